//! What the demo sends: the three logical services, their requests, and a seedable generator.
//!
//! The same `--seed` must give the same request sequence, so ids and prompts come from a small
//! deterministic generator (SplitMix64) rather than the OS; a repeated ai prompt is what makes
//! the cache hit, so the prompt pool of each phase decides the expected hit ratio.

use federation_core::client::Request;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;

use super::story::Prompts;

/// The logical services the demo drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `user` (prefers zervigo; looma-user-api in looma).
    User,
    /// `resume` (prefers zervigo).
    Resume,
    /// `ai` (looma only; inference results cached).
    Ai,
}

impl Target {
    /// Every target, in display order.
    pub const ALL: [Target; 3] = [Target::User, Target::Resume, Target::Ai];

    /// The logical service name in the client configuration.
    pub fn service(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Resume => "resume",
            Self::Ai => "ai",
        }
    }

    /// The next request for this target.
    pub fn request(self, rng: &mut SplitMix64, prompts: Prompts) -> Request {
        match self {
            Self::User => Request::new(
                Method::GET,
                format!("/api/v1/users/{}", 1 + rng.below(10_000)),
            ),
            Self::Resume => Request::new(
                Method::GET,
                format!("/api/v1/resumes/{}", 1 + rng.below(10_000)),
            ),
            Self::Ai => {
                let prompt = match prompts {
                    Prompts::Unique => format!("u{}", rng.next_u64()),
                    Prompts::Pool(n) => format!("p{}", rng.below(u64::from(n.max(1)))),
                };
                let mut request = Request::new(Method::POST, "/v1/inference");
                let body = serde_json::json!({
                    "model": "v2",
                    "prompt": format!("summarise resume {prompt}"),
                });
                request.set_body(body.to_string());
                request
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                request
            }
        }
    }
}

/// SplitMix64: a tiny, fast, seedable generator (not for cryptography).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0; slight modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_requests() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..10 {
            let ra = Target::Ai.request(&mut a, Prompts::Pool(4));
            let rb = Target::Ai.request(&mut b, Prompts::Pool(4));
            assert_eq!(ra.body(), rb.body());
        }
    }

    #[test]
    fn pool_limits_distinct_prompts() {
        let mut rng = SplitMix64::new(1);
        let distinct: std::collections::HashSet<_> = (0..200)
            .map(|_| {
                Target::Ai
                    .request(&mut rng, Prompts::Pool(4))
                    .body()
                    .clone()
            })
            .collect();
        assert!(distinct.len() <= 4);
    }
}
