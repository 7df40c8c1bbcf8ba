CREATE TABLE `installations` (
	`location_id` text PRIMARY KEY NOT NULL,
	`company_id` text NOT NULL,
	`status` text NOT NULL,
	`whitelabel_domain` text,
	`installed_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "installations_status" CHECK("installations"."status" in ('active', 'needs_reauth', 'paused', 'uninstalled'))
);
