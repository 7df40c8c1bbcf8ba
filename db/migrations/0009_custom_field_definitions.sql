CREATE TABLE `custom_field_definitions` (
	`location_id` text PRIMARY KEY NOT NULL,
	`definitions` text DEFAULT '[]' NOT NULL,
	`listed_at` integer,
	`problem` text,
	`problem_at` integer,
	`updated_at` integer NOT NULL
);
