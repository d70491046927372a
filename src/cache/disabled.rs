//! No cache (`REPUTE_CACHE=none`): every lookup goes to the provider, nothing touches the
//! disk, and the quota state lives only as long as the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Cache, CacheError, CacheKey, Cached, QuotaState};
use crate::reputation::Reputation;

/// The cache that remembers nothing but this process's quota state.
#[derive(Debug, Default)]
pub struct DisabledCache {
    quota: Mutex<HashMap<String, QuotaState>>,
}

impl DisabledCache {
    pub fn new() -> Self {
        DisabledCache::default()
    }
}

impl Cache for DisabledCache {
    fn get(&self, _key: &CacheKey) -> Result<Option<Cached>, CacheError> {
        Ok(None)
    }

    fn put(&self, _: &CacheKey, _: &Reputation, _: Duration) -> Result<(), CacheError> {
        Ok(())
    }

    fn try_lease(&self, _: &CacheKey, _: &str, _: Duration) -> Result<bool, CacheError> {
        Ok(true)
    }

    fn release_lease(&self, _: &CacheKey, _: &str) -> Result<(), CacheError> {
        Ok(())
    }

    fn fail_lease(&self, _: &CacheKey, _: &str, _: &str, _: Duration) -> Result<(), CacheError> {
        Ok(())
    }

    fn lease_holder(&self, _: &CacheKey) -> Result<Option<String>, CacheError> {
        Ok(None)
    }

    fn quota(&self, endpoint: &str) -> Result<Option<QuotaState>, CacheError> {
        let map = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(endpoint).cloned())
    }

    fn record_quota(&self, endpoint: &str, state: &QuotaState) -> Result<(), CacheError> {
        let mut map = self.quota.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(endpoint.to_string(), state.clone());
        Ok(())
    }

    fn purge_expired(&self) -> Result<u64, CacheError> {
        Ok(0)
    }
}
