CREATE TABLE `operation_items` (
	`operation_id` text NOT NULL,
	`key` text NOT NULL,
	`location_id` text NOT NULL,
	`entity` text NOT NULL,
	`side` text NOT NULL,
	`action` text NOT NULL,
	`state` text NOT NULL,
	`contact_id` text,
	`highlevel_id` text,
	`label` text,
	`reason` text,
	`before` text,
	`after` text,
	`seq` integer NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `operation_items_pk` ON `operation_items` (`operation_id`,`key`);--> statement-breakpoint
CREATE INDEX `operation_items_seq` ON `operation_items` (`operation_id`,`seq`);--> statement-breakpoint
CREATE TABLE `operations` (
	`id` text PRIMARY KEY NOT NULL,
	`location_id` text NOT NULL,
	`kind` text NOT NULL,
	`undo_of` text,
	`status` text NOT NULL,
	`requested_by` text NOT NULL,
	`requested_by_name` text,
	`created_at` integer NOT NULL,
	`previewed_at` integer,
	`confirmed_at` integer,
	`finished_at` integer,
	`cancel_requested_at` integer,
	`preview` text,
	`progress` text,
	`checkpoint` text,
	`error` text,
	`lease_owner` text,
	`lease_until` integer,
	`undone_by` text,
	`updated_at` integer NOT NULL,
	CONSTRAINT "operations_status" CHECK("operations"."status" in ('previewing', 'previewed', 'running', 'completed', 'cancelled', 'failed', 'discarded'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `operations_one_active` ON `operations` (`location_id`) WHERE "operations"."status" in ('previewing', 'previewed', 'running');--> statement-breakpoint
CREATE INDEX `operations_location_created` ON `operations` (`location_id`,`created_at`);