// Per-test span capture through one process-wide `tracing` subscriber (shared by the telemetry
// tests through `include!`).
//
// Why not a scoped subscriber (`set_default`/`with_default`) per test: `tracing` caches each
// callsite's interest process-wide, computed when the callsite is first reached. While at most
// one dispatcher is registered, tracing-core computes it against the *registering thread's*
// default (`Rebuilder::JustOne`), so a concurrent test without a subscriber that reaches
// `federation.call` first caches "never" and the capturing test sees no span at all (the
// flake this replaces). Here a global subscriber is installed once, before any test of the
// binary runs a call (`install()`), so every thread computes interest against it. Each test
// wraps its work in its own marker span (`Capture::run` / `Capture::in_scope`) and captures
// only the spans descending from that marker: tests running concurrently never see each
// other's spans.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Name of the per-test marker span.
const MARKER: &str = "test.capture";

/// One captured span.
#[derive(Clone, Debug, Default)]
pub struct CapturedSpan {
    pub name: String,
    pub parent: Option<String>,
    pub fields: BTreeMap<String, String>,
}

#[allow(dead_code, reason = "each test file uses a different subset")]
impl CapturedSpan {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

type Buffer = Arc<Mutex<Vec<CapturedSpan>>>;

/// The captures alive in the process, by marker id.
#[derive(Default)]
struct Router {
    next: AtomicU64,
    captures: Mutex<HashMap<u64, Buffer>>,
}

fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(Router::default)
}

/// Installs the process-wide capturing subscriber (once) and refreshes every callsite's cached
/// interest. Call it before the code under test first runs in this process (test set-up
/// helpers do), so no callsite is ever cached as uninteresting.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Route))
            .expect("no other global subscriber in this test binary");
    });
    tracing::callsite::rebuild_interest_cache();
}

/// The spans created under one test's marker span, in creation order.
pub struct Capture {
    id: u64,
    spans: Buffer,
    marker: tracing::Span,
}

impl Drop for Capture {
    fn drop(&mut self) {
        router()
            .captures
            .lock()
            .expect("router lock")
            .remove(&self.id);
    }
}

#[allow(dead_code, reason = "each test file uses a different subset")]
impl Capture {
    /// A new capture (installs the global subscriber if needed).
    pub fn start() -> Self {
        install();
        let r = router();
        let id = r.next.fetch_add(1, Ordering::Relaxed);
        let spans = Buffer::default();
        r.captures
            .lock()
            .expect("router lock")
            .insert(id, Arc::clone(&spans));
        let marker = tracing::info_span!(parent: None, "test.capture", capture = id);
        Self { id, spans, marker }
    }

    /// Runs `future` under this capture's marker span.
    pub async fn run<F: Future>(&self, future: F) -> F::Output {
        future.instrument(self.marker.clone()).await
    }

    /// Runs `f` under this capture's marker span.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        self.marker.in_scope(f)
    }

    /// The first span named `name`.
    pub fn span(&self, name: &str) -> Option<CapturedSpan> {
        self.all(name).into_iter().next()
    }

    /// Every span named `name`, in creation order.
    pub fn all(&self, name: &str) -> Vec<CapturedSpan> {
        let spans = self.spans.lock().expect("capture lock");
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }
}

/// Stored in a span's extensions: the capture it belongs to and, for captured spans (not the
/// marker), its index in that capture's buffer.
struct Tag {
    buffer: Buffer,
    index: Option<usize>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Reads the marker's `capture` id.
struct MarkerId(Option<u64>);

impl Visit for MarkerId {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "capture" {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn Debug) {}
}

/// The global layer: routes spans under a marker to that marker's capture.
struct Route;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Route {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if attrs.metadata().name() == MARKER {
            let mut marker = MarkerId(None);
            attrs.record(&mut marker);
            let buffer = marker.0.and_then(|m| {
                let captures = router().captures.lock().expect("router lock");
                captures.get(&m).cloned()
            });
            if let Some(buffer) = buffer {
                span.extensions_mut().insert(Tag {
                    buffer,
                    index: None,
                });
            }
            return;
        }
        let Some(parent) = span.parent() else { return };
        let Some(buffer) = parent
            .extensions()
            .get::<Tag>()
            .map(|t| Arc::clone(&t.buffer))
        else {
            return;
        };
        let mut captured = CapturedSpan {
            name: attrs.metadata().name().to_owned(),
            parent: Some(parent.name().to_owned()),
            ..CapturedSpan::default()
        };
        attrs.record(&mut Fields(&mut captured.fields));
        let index = {
            let mut spans = buffer.lock().expect("capture lock");
            spans.push(captured);
            spans.len() - 1
        };
        span.extensions_mut().insert(Tag {
            buffer,
            index: Some(index),
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let extensions = span.extensions();
        let Some(Tag {
            buffer,
            index: Some(index),
        }) = extensions.get::<Tag>()
        else {
            return;
        };
        let mut spans = buffer.lock().expect("capture lock");
        if let Some(captured) = spans.get_mut(*index) {
            values.record(&mut Fields(&mut captured.fields));
        }
    }
}
