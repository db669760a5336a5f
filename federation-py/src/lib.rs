//! tmp
use pyo3::prelude::*;
/// tmp
#[pymodule]
fn _federation(_m: &Bound<'_, PyModule>) -> PyResult<()> { Ok(()) }
