//! "Did you mean" hints for misspelled keys, enum values and cluster names.
//!
//! An unknown key is almost always a typo (`timout`, `max_attemps`); naming the intended key
//! turns a puzzling rejection into a one-second fix. Candidates are ranked by Levenshtein edit
//! distance (case-insensitive, `-` and `_` treated alike) and suggested only when close enough
//! to be plausible.

/// The candidate closest to `word`, if one is plausibly what was meant.
pub(crate) fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word = normalize(word);
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (distance(&word, &normalize(candidate)), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// A parenthesized hint (" (did you mean `x`?)") or an empty string.
pub(crate) fn hint<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    did_you_mean(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

/// A readable list of allowed values: "`a`, `b`, `c`".
pub(crate) fn list<'a, I>(items: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    items
        .into_iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn normalize(s: &str) -> String {
    s.to_lowercase().replace('-', "_")
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let insert = current[j] + 1;
            let delete = previous[j + 1] + 1;
            current.push(substitute.min(insert).min(delete));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["timeout", "retry", "breaker", "max_attempts"];
        assert_eq!(did_you_mean("timout", keys), Some("timeout"));
        assert_eq!(did_you_mean("max-attempts", keys), Some("max_attempts"));
        assert_eq!(did_you_mean("max_attemps", keys), Some("max_attempts"));
        assert_eq!(did_you_mean("zzz", keys), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
