//! No store (`REPUTE_STORE=none`): every lookup goes to the provider, nothing touches the
//! disk, and the quota state lives only as long as the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::cache::{CacheKey, Cached, LeaseState, QuotaUpdate, ReputationCache, Settlement};
use crate::quota::{QuotaState, QuotaStore};
use crate::store::StoreError;

/// The store that keeps no answer, and this process's quota state only.
#[derive(Debug, Default)]
pub struct NoStore {
    quota: Mutex<HashMap<String, QuotaState>>,
}

impl NoStore {
    pub fn new() -> Self {
        NoStore::default()
    }
}

impl ReputationCache for NoStore {
    fn get(&self, _key: &CacheKey) -> Result<Option<Cached>, StoreError> {
        Ok(None)
    }

    fn take_lease(&self, _: &CacheKey, _: &str, _: Duration) -> Result<LeaseState, StoreError> {
        Ok(LeaseState::Taken)
    }

    fn settle(
        &self,
        _: &CacheKey,
        _: &str,
        _: Settlement<'_>,
        quota: Option<QuotaUpdate<'_>>,
    ) -> Result<(), StoreError> {
        match quota {
            Some(q) => self.record_quota(q.endpoint, q.state),
            None => Ok(()),
        }
    }
}

impl QuotaStore for NoStore {
    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, StoreError> {
        let map = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(endpoint).cloned())
    }

    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), StoreError> {
        let mut map = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(endpoint.to_string(), state.clone());
        Ok(())
    }
}
