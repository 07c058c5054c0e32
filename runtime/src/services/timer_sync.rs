//! Making the operator's durable timers match the config: one rule for both job stores.
//!
//! Owns: `TimerTable` (the four statements a store lends for it) and `sync_timers`, the rule:
//! a timer of the config's `source` that the config no longer names is cancelled, a new or
//! changed one is written, and an unchanged one is left alone so it keeps its next due time
//! (a restart must not push every timer's next run a period away). Must not touch: SQL
//! (`journal`, `pg_timers`), transactions, tenants' own timers (owner not empty).

use super::error::StoreResult;
use super::job::TimerRecord;

/// What a store's transaction lends to `sync_timers`.
pub trait TimerTable {
    /// Names of the operator's timers (owner empty) that came from `source`.
    fn operator_timer_names(&mut self, source: &str) -> StoreResult<Vec<String>>;
    /// The stored timer `name` of `owner`, if any.
    fn stored_timer(&mut self, owner: &str, name: &str) -> StoreResult<Option<TimerRecord>>;
    /// Creates or replaces a timer.
    fn write_timer(&mut self, timer: &TimerRecord) -> StoreResult<()>;
    /// Removes the operator's timer `name`.
    fn remove_operator_timer(&mut self, name: &str) -> StoreResult<()>;
}

/// Makes the operator's timers of `source` exactly `wanted` (see the module's header).
pub fn sync_timers(
    table: &mut impl TimerTable,
    source: &str,
    wanted: &[TimerRecord],
) -> StoreResult<()> {
    for name in table.operator_timer_names(source)? {
        if !wanted.iter().any(|t| t.name == name) {
            table.remove_operator_timer(&name)?;
        }
    }
    for timer in wanted {
        let unchanged = table
            .stored_timer(&timer.owner, &timer.name)?
            .is_some_and(|t| {
                t.source == source && t.schedule == timer.schedule && t.request == timer.request
            });
        if !unchanged {
            table.write_timer(timer)?;
        }
    }
    Ok(())
}
