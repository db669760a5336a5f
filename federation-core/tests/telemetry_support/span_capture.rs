// A `tracing` layer that records every span's name, parent and fields (shared by the telemetry
// tests through `include!`).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

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

/// Collects spans; clone it into the subscriber and keep a handle to inspect.
#[derive(Clone, Default)]
pub struct Capture {
    spans: Arc<Mutex<Vec<(u64, CapturedSpan)>>>,
}

#[allow(dead_code, reason = "each test file uses a different subset")]
impl Capture {
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync {
        tracing_subscriber::registry().with(self.clone())
    }

    /// The first span named `name`.
    pub fn span(&self, name: &str) -> Option<CapturedSpan> {
        self.all(name).into_iter().next()
    }

    /// Every span named `name`, in creation order.
    pub fn all(&self, name: &str) -> Vec<CapturedSpan> {
        let spans = self.spans.lock().expect("capture lock");
        spans
            .iter()
            .filter(|(_, s)| s.name == name)
            .map(|(_, s)| s.clone())
            .collect()
    }
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

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut span = CapturedSpan {
            name: attrs.metadata().name().to_owned(),
            ..CapturedSpan::default()
        };
        span.parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.name().to_owned());
        attrs.record(&mut Fields(&mut span.fields));
        self.spans
            .lock()
            .expect("capture lock")
            .push((id.into_u64(), span));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().expect("capture lock");
        // Ids are reused after close: the latest span with this id is the live one.
        if let Some((_, span)) = spans
            .iter_mut()
            .rev()
            .find(|(sid, _)| *sid == id.into_u64())
        {
            values.record(&mut Fields(&mut span.fields));
        }
    }
}
