//! Instance references: `cluster`, `cluster/service` or `cluster/service/index`.
//!
//! A fault aimed at the wrong instance makes a scenario pass for the wrong reason, so a reference
//! that matches nothing is an error, never an empty selection.

use crate::driver::InstanceRef;

/// Every instance matching `reference`, or an error naming what exists.
pub fn resolve(reference: &str, instances: &[InstanceRef]) -> Result<Vec<InstanceRef>, String> {
    let mut parts = reference.split('/');
    let cluster = parts.next().unwrap_or_default();
    let service = parts.next();
    let index = match parts.next() {
        Some(text) => Some(
            text.parse::<usize>()
                .map_err(|_| format!("`{reference}`: instance index `{text}` is not a number"))?,
        ),
        None => None,
    };
    if parts.next().is_some() {
        return Err(format!("`{reference}`: expected cluster[/service[/index]]"));
    }
    let matched: Vec<InstanceRef> = instances
        .iter()
        .filter(|i| i.cluster == cluster)
        .filter(|i| service.is_none_or(|s| i.service == s))
        .filter(|i| index.is_none_or(|n| i.index == n))
        .cloned()
        .collect();
    if matched.is_empty() {
        let known: Vec<String> = instances
            .iter()
            .map(|i| format!("{}/{}/{}", i.cluster, i.service, i.index))
            .collect();
        return Err(format!(
            "`{reference}` matches no instance; instances: {}",
            known.join(", ")
        ));
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> Vec<InstanceRef> {
        ["a", "b"]
            .iter()
            .flat_map(|c| {
                (0..2).map(move |i| InstanceRef {
                    cluster: (*c).to_owned(),
                    service: "svc".to_owned(),
                    index: i,
                    id: InstanceRef::id_for("svc", i),
                })
            })
            .collect()
    }

    #[test]
    fn resolves_cluster_service_and_index() {
        let w = world();
        assert_eq!(resolve("a", &w).map(|v| v.len()), Ok(2));
        assert_eq!(resolve("b/svc", &w).map(|v| v.len()), Ok(2));
        assert_eq!(
            resolve("b/svc/1", &w).map(|v| v[0].id.clone()),
            Ok("svc-1".into())
        );
    }

    #[test]
    fn nothing_matched_is_an_error() {
        let w = world();
        assert!(resolve("c", &w).is_err());
        assert!(resolve("a/svc/9", &w).is_err());
        assert!(resolve("a/svc/x", &w).is_err());
        assert!(resolve("a/svc/0/1", &w).is_err());
    }
}
