CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`location_id` text NOT NULL,
	`name` text NOT NULL,
	`prefix` text NOT NULL,
	`hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`created_by` text,
	`last_used_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash` ON `api_keys` (`hash`);--> statement-breakpoint
CREATE INDEX `api_keys_location` ON `api_keys` (`location_id`);--> statement-breakpoint
CREATE TABLE `contact_links` (
	`contact_id` text PRIMARY KEY NOT NULL,
	`location_id` text NOT NULL,
	`highlevel_id` text NOT NULL,
	`base` text NOT NULL,
	`remote_updated_at` integer,
	`remote_deleted_at` integer,
	`linked_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contact_links_location_remote` ON `contact_links` (`location_id`,`highlevel_id`);--> statement-breakpoint
CREATE TABLE `contacts` (
	`id` text PRIMARY KEY NOT NULL,
	`location_id` text NOT NULL,
	`first_name` text,
	`last_name` text,
	`email` text,
	`email_lower` text,
	`phone` text,
	`company_name` text,
	`address1` text,
	`city` text,
	`state` text,
	`postal_code` text,
	`country` text,
	`website` text,
	`timezone` text,
	`date_of_birth` text,
	`source` text,
	`tags` text DEFAULT '[]' NOT NULL,
	`dnd` integer DEFAULT false NOT NULL,
	`owner_user_id` text,
	`custom_fields` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`archived_at` integer,
	`version` integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `contacts_location_updated` ON `contacts` (`location_id`,`updated_at`,`id`);--> statement-breakpoint
CREATE INDEX `contacts_location_email` ON `contacts` (`location_id`,`email_lower`);--> statement-breakpoint
CREATE INDEX `contacts_location_phone` ON `contacts` (`location_id`,`phone`);--> statement-breakpoint
CREATE TABLE `highlevel_users` (
	`location_id` text NOT NULL,
	`highlevel_id` text NOT NULL,
	`email` text,
	`email_lower` text,
	`name` text,
	`active` integer DEFAULT true NOT NULL,
	`deleted` integer DEFAULT false NOT NULL,
	`user_id` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `highlevel_users_pk` ON `highlevel_users` (`location_id`,`highlevel_id`);--> statement-breakpoint
CREATE INDEX `highlevel_users_user` ON `highlevel_users` (`location_id`,`user_id`);--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`location_id` text NOT NULL,
	`contact_id` text NOT NULL,
	`kind` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer NOT NULL,
	`last_error` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `outbox_location_contact` ON `outbox` (`location_id`,`contact_id`);--> statement-breakpoint
CREATE INDEX `outbox_due` ON `outbox` (`location_id`,`status`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `settings_audit` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`location_id` text NOT NULL,
	`user_id` text NOT NULL,
	`user_name` text,
	`setting` text NOT NULL,
	`old_value` text,
	`new_value` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `settings_audit_location` ON `settings_audit` (`location_id`,`at`);--> statement-breakpoint
CREATE TABLE `sync_settings` (
	`location_id` text PRIMARY KEY NOT NULL,
	`creation_direction` text DEFAULT 'bidirectional' NOT NULL,
	`update_direction` text DEFAULT 'inbound' NOT NULL,
	`paused` integer DEFAULT false NOT NULL,
	`updated_at` integer NOT NULL,
	`updated_by` text
);
--> statement-breakpoint
CREATE TABLE `sync_state` (
	`location_id` text PRIMARY KEY NOT NULL,
	`pull_cursor` text,
	`last_full_sweep_at` integer,
	`next_pull_at` integer,
	`last_inbound_at` integer,
	`last_outbound_at` integer,
	`last_error` text,
	`last_error_at` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`location_id` text NOT NULL,
	`name` text NOT NULL,
	`email` text NOT NULL,
	`email_lower` text NOT NULL,
	`active` integer DEFAULT true NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_location_email` ON `users` (`location_id`,`email_lower`);