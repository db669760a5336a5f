//! Cache coherence hooks of the client: dropping an entity's cached answers everywhere when the
//! entity changes (`invalidate_entity`, what data sync calls after applying a change), and
//! warming a service's cache ahead of traffic (`warm`, and `cache.warm` at start).
//!
//! The failures prevented: a user record synced from the other cluster keeps being served from
//! a cache that has no idea the record changed (the mapping from entity types to cached paths
//! lives in configuration, next to the cache it concerns); and the first minutes after a deploy
//! send every request upstream because every cache starts empty (warm-up fetches a known list
//! with bounded concurrency and reports its progress in health).

use futures_util::StreamExt;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::FederatedServiceClient;
use crate::error::Error;

/// Characters of an entity id encoded when it is put into a path template: everything that
/// would end or restructure a path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b'*')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Longest a warm-up waits for the shared tier before fetching anyway.
const WAIT_FOR_TIER: std::time::Duration = std::time::Duration::from_secs(2);

/// What a warm-up did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WarmReport {
    /// Paths fetched with a 2xx answer (now cached, if storable).
    pub fetched: u64,
    /// Paths whose fetch failed or answered non-2xx.
    pub failed: u64,
}

impl FederatedServiceClient {
    /// Drops, in every service whose `cache.entities` maps `entity`, the cached answers of the
    /// entity with this `id` (its templates with `{id}` replaced; a trailing `*` drops the
    /// prefix), in this process and, with `cache.l2`, in every process sharing the tier.
    /// Returns how many paths or prefixes were invalidated (0: nothing maps this entity type).
    pub fn invalidate_entity(&self, entity: &str, id: &str) -> usize {
        let id = utf8_percent_encode(id, SEGMENT).to_string();
        let mut done = 0;
        for svc in self.inner().services.values() {
            let (Some(cache), Some(policy)) = (&svc.cache, &svc.policy.cache) else {
                continue;
            };
            for template in policy.entities.get(entity).into_iter().flatten() {
                let path = template.replace("{id}", &id);
                match path.strip_suffix('*') {
                    Some(prefix) => cache.invalidate_prefix(prefix),
                    None => cache.invalidate(&path),
                }
                done += 1;
            }
        }
        done
    }

    /// Fetches `paths` of `service` (`GET`) so they are cached before traffic asks for them,
    /// at most `cache.warm_concurrency` at once; progress is reported in
    /// [`health`](Self::health) (`cache_warm`).
    ///
    /// # Errors
    /// The service is unknown or has no cache. Failed fetches are counted, not returned.
    pub async fn warm(&self, service: &str, paths: &[String]) -> Result<WarmReport, Error> {
        let inner = self.inner();
        let Some(svc) = inner.services.get(service) else {
            return Err(super::call::unknown_service(&inner, service));
        };
        let (Some(cache), Some(policy)) = (&svc.cache, &svc.policy.cache) else {
            return Err(Error::invalid(format!(
                "service `{service}` has no cache to warm; enable `cache` in its policy"
            ))
            .with_service(service.to_owned()));
        };
        cache.warm_counters().plan(paths.len());
        // A tier that is not ready yet would drop what is fetched now at its first resync.
        cache.l2_ready(WAIT_FOR_TIER).await;
        let concurrency = usize::try_from(policy.warm_concurrency.max(1)).unwrap_or(1);
        let fetches = paths.iter().cloned().map(|path| {
            let (client, cache, service) = (self.clone(), cache.clone(), service.to_owned());
            async move {
                cache.warm_counters().start();
                let ok = matches!(
                    client.get(&service, &path).send().await,
                    Ok(response) if response.status().is_success()
                );
                cache.warm_counters().finish(ok);
                ok
            }
        });
        let outcomes: Vec<bool> = futures_util::stream::iter(fetches)
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let fetched = outcomes.iter().filter(|ok| **ok).count() as u64;
        Ok(WarmReport {
            fetched,
            failed: outcomes.len() as u64 - fetched,
        })
    }
}

/// Starts the configured warm-ups (`cache.warm`) of a new client in the background, when a
/// runtime is at hand (bindings build clients inside theirs).
pub(crate) fn start_warm(client: &FederatedServiceClient) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let inner = client.inner();
    for name in inner.services.keys() {
        let Some(svc) = inner.services.get(name) else {
            continue;
        };
        let Some(policy) = &svc.policy.cache else {
            continue;
        };
        if policy.warm.is_empty() || svc.cache.is_none() {
            continue;
        }
        let (client, name, paths) = (client.clone(), name.clone(), policy.warm.clone());
        runtime.spawn(async move { client.warm(&name, &paths).await });
    }
}
