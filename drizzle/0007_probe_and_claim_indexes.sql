DROP INDEX "ti_run_state";--> statement-breakpoint
CREATE INDEX "ti_run_state_task" ON "task_instances" USING btree ("run_pk","state","task_id");--> statement-breakpoint
CREATE INDEX "ti_pool_held_deferred" ON "task_instances" USING btree ("pool") WHERE state = 'deferred' or (state = 'scheduled' and next_method is not null);