//! Python conflict callbacks for `policy: callback` entity types.
//!
//! **Failure prevented.** A callback that raises, or returns something that is not a decision,
//! must neither crash the consumer nor stall the partition, and must not pass unnoticed. The
//! runtime's callback has no error path (the decision is a pure function both clusters run), so
//! such a callback's conflict is decided by last writer wins (the newer stamp, which both sides
//! pick alike) and the error is reported through `sys.unraisablehook` (printed with its
//! traceback; pytest reports it).

use std::sync::Arc;

use federation_sync::model::{ConflictCallback, Resolution, Version};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{from_py, to_py};
use crate::{errors, runtime};

/// The callbacks of a `callbacks={"type": f}` argument. Each `f(first, second)` gets the two
/// versions (`{"stamp", "data"}`, older stamp first) and returns `"first"`, `"second"` or a
/// merged record (a dict).
pub(crate) fn callbacks(
    py: Python<'_>,
    given: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<(String, ConflictCallback)>> {
    let mut out = Vec::new();
    let Some(given) = given else {
        return Ok(out);
    };
    let inspect = py.import("inspect")?;
    for (name, f) in given.iter() {
        let name: String = name.extract().map_err(|_| {
            errors::invalid_request(py, "`callbacks` keys must be entity type names (str)")
        })?;
        if !f.is_callable()
            || inspect
                .call_method1("iscoroutinefunction", (&f,))?
                .is_truthy()?
        {
            return Err(errors::invalid_request(
                py,
                format!("callbacks[{name:?}] must be a plain (not async) function of two versions"),
            ));
        }
        let f = Arc::new(f.unbind());
        let callback: ConflictCallback =
            Arc::new(move |first: &Version, second: &Version| decide(&f, first, second));
        out.push((name, callback));
    }
    Ok(out)
}

/// Runs the Python callback; on any failure, last writer wins (see the module docs).
fn decide(f: &Py<PyAny>, first: &Version, second: &Version) -> Resolution {
    if !runtime::enter_attach() {
        return Resolution::Second;
    }
    let decided = Python::try_attach(|py| match call(py, f, first, second) {
        Ok(resolution) => resolution,
        Err(error) => {
            error.write_unraisable(py, Some(f.bind(py)));
            Resolution::Second
        }
    });
    runtime::exit_attach();
    decided.unwrap_or(Resolution::Second)
}

fn call(py: Python<'_>, f: &Py<PyAny>, first: &Version, second: &Version) -> PyResult<Resolution> {
    let answer = f.bind(py).call1((to_py(py, first)?, to_py(py, second)?))?;
    if let Ok(word) = answer.extract::<String>() {
        return match word.as_str() {
            "first" => Ok(Resolution::First),
            "second" => Ok(Resolution::Second),
            other => Err(errors::invalid_request(
                py,
                format!(
                    "a conflict callback returned {other:?}; allowed: \"first\", \"second\" or a merged dict"
                ),
            )),
        };
    }
    if answer.is_instance_of::<PyDict>() {
        return Ok(Resolution::Merged(from_py(
            &answer,
            "the conflict callback's merged record",
        )?));
    }
    Err(errors::invalid_request(
        py,
        format!(
            "a conflict callback returned a {}; allowed: \"first\", \"second\" or a merged dict",
            answer.get_type().name()?
        ),
    ))
}
