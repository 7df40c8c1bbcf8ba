CREATE TABLE `companies` (
	`company_id` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`install_to_future_locations` integer NOT NULL,
	`whitelabel_domain` text,
	`installed_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "companies_status" CHECK("companies"."status" in ('active', 'needs_reauth', 'uninstalled'))
);
--> statement-breakpoint
CREATE TABLE `tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_type` text NOT NULL,
	`owner_id` text NOT NULL,
	`company_id` text NOT NULL,
	`access_token` text NOT NULL,
	`refresh_token` text,
	`expires_at` integer NOT NULL,
	`scopes` text NOT NULL,
	`refresh_lock_until` integer,
	`refresh_lock_owner` text,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `webhook_inbox` (
	`webhook_id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`location_id` text,
	`company_id` text,
	`body` text NOT NULL,
	`received_at` integer NOT NULL,
	`processed_at` integer,
	`outcome` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_attempt_at` integer
);
--> statement-breakpoint
ALTER TABLE `installations` ADD `location_name` text;--> statement-breakpoint
ALTER TABLE `installations` ADD `status_reason` text;--> statement-breakpoint
ALTER TABLE `installations` ADD `uninstalled_at` integer;