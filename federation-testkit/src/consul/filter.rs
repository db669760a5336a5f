//! `?filter=`: a subset of go-bexpr, the expression language Consul filters list reads with.
//!
//! Clients filter server-side (`Service.Tags contains "v2"`, `Service.Meta.zone == "a"`); a
//! double that answered every filter with an error would fail them, and one that ignored the
//! filter would hand them instances real Consul withholds. The double evaluates the expression
//! against each entry as rendered in JSON (the field names are Consul's, so selectors are the
//! documented ones). Supported: `==`, `!=`, `contains`, `not contains`, `in`, `not in`,
//! `is empty`, `is not empty`, `and`, `or`, `not`, parentheses; values quoted (`"v"`, `` `v` ``)
//! or bare. A selector that crosses a list (`Checks.Status`) matches when any element does. A
//! selector naming no field compares as absent. Anything else (`matches`, a syntax error)
//! answers 500 `Failed to create boolean expression evaluator: …`, as Consul does.

use serde_json::Value;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match {
        selector: Vec<String>,
        op: Op,
        value: String,
    },
}

/// A match operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Equal,
    NotEqual,
    Contains,
    NotContains,
    IsEmpty,
    IsNotEmpty,
}

/// Parses `text`; the error is the 500 body Consul sends.
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text).map_err(evaluator_error)?;
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or().map_err(evaluator_error)?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(evaluator_error(format!("unexpected {token:?}"))),
    }
}

fn evaluator_error(detail: String) -> String {
    format!("Failed to create boolean expression evaluator: {detail}")
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Equal,
    NotEqual,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                tokens.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '=' | '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err(format!("expected `{c}=`"));
                }
                tokens.push(if c == '=' {
                    Token::Equal
                } else {
                    Token::NotEqual
                });
            }
            '"' | '`' => {
                chars.next();
                tokens.push(Token::Quoted(quoted(&mut chars, c)?));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()=!\"`".contains(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

fn quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    end: char,
) -> Result<String, String> {
    let mut out = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated string".to_owned()),
            Some(c) if c == end => return Ok(out),
            Some('\\') if end == '"' => match chars.next() {
                Some(escaped) => out.push(escaped),
                None => return Err("unterminated string".to_owned()),
            },
            Some(c) => out.push(c),
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w == word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                other => Err(format!("expected `)`, found {other:?}")),
            };
        }
        self.matcher()
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(word) | Token::Quoted(word)) => Ok(word),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    fn selector(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Token::Word(word)) if !word.is_empty() => {
                Ok(word.split('.').map(str::to_owned).collect())
            }
            other => Err(format!("expected a selector, found {other:?}")),
        }
    }

    /// `selector op value`, `value [not] in selector`, `selector is [not] empty`.
    fn matcher(&mut self) -> Result<Expr, String> {
        let after = |n: usize| self.tokens.get(self.at + n);
        let in_at = if after(1).is_some_and(is_in) {
            Some(1)
        } else if after(1) == Some(&Token::Word("not".into())) && after(2).is_some_and(is_in) {
            Some(2)
        } else if matches!(self.peek(), Some(Token::Quoted(_))) {
            return Err("a quoted value must be followed by `in` or `not in`".to_owned());
        } else {
            None
        };
        if let Some(skip) = in_at {
            let value = self.value()?;
            self.at += skip;
            let op = if skip == 2 {
                Op::NotContains
            } else {
                Op::Contains
            };
            let selector = self.selector()?;
            return Ok(Expr::Match {
                selector,
                op,
                value,
            });
        }
        let selector = self.selector()?;
        let op = match self.next() {
            Some(Token::Equal) => Op::Equal,
            Some(Token::NotEqual) => Op::NotEqual,
            Some(Token::Word(w)) if w == "contains" => Op::Contains,
            Some(Token::Word(w)) if w == "not" && self.keyword("contains") => Op::NotContains,
            Some(Token::Word(w)) if w == "is" => {
                let negated = self.keyword("not");
                if !self.keyword("empty") {
                    return Err("expected `empty` after `is`".to_owned());
                }
                let op = if negated { Op::IsNotEmpty } else { Op::IsEmpty };
                return Ok(Expr::Match {
                    selector,
                    op,
                    value: String::new(),
                });
            }
            other => return Err(format!("unsupported operator {other:?}")),
        };
        let value = self.value()?;
        Ok(Expr::Match {
            selector,
            op,
            value,
        })
    }
}

fn is_in(token: &Token) -> bool {
    *token == Token::Word("in".to_owned())
}

impl Expr {
    /// Whether `entry` (an entry as rendered in JSON) matches.
    pub(crate) fn matches(&self, entry: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.matches(entry) && b.matches(entry),
            Expr::Or(a, b) => a.matches(entry) || b.matches(entry),
            Expr::Not(inner) => !inner.matches(entry),
            Expr::Match {
                selector,
                op,
                value,
            } => {
                let mut found = Vec::new();
                select(entry, selector, &mut found);
                let any = |test: &dyn Fn(&Value) -> bool| found.iter().any(|v| test(v));
                match op {
                    Op::Equal => any(&|v| equals(v, value)),
                    Op::NotEqual => !any(&|v| equals(v, value)),
                    Op::Contains => any(&|v| contains(v, value)),
                    Op::NotContains => !any(&|v| contains(v, value)),
                    Op::IsEmpty => found.is_empty() || any(&is_empty),
                    Op::IsNotEmpty => any(&|v| !is_empty(v)),
                }
            }
        }
    }
}

/// Every value `path` reaches from `value`; lists are crossed element by element.
fn select<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match (value, path.split_first()) {
        (Value::Array(items), Some(_)) => {
            for item in items {
                select(item, path, out);
            }
        }
        (Value::Object(map), Some((first, rest))) => {
            if let Some(next) = map.get(first.as_str()) {
                select(next, rest, out);
            }
        }
        (_, Some(_)) => {}
        (found, None) => out.push(found),
    }
}

fn equals(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(text) => text == wanted,
        Value::Bool(flag) => wanted.parse::<bool>().is_ok_and(|w| w == *flag),
        Value::Number(number) => wanted
            .parse::<f64>()
            .is_ok_and(|w| number.as_f64() == Some(w)),
        _ => false,
    }
}

fn contains(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(text) => text.contains(wanted),
        Value::Array(items) => items.iter().any(|item| equals(item, wanted)),
        Value::Object(map) => map.contains_key(wanted),
        _ => false,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(filter: &str, entry: &Value) -> bool {
        parse(filter).expect("valid filter").matches(entry)
    }

    #[test]
    fn evaluates_the_documented_forms() {
        let entry = json!({
            "Service": {"Tags": ["v2", "grpc"], "Meta": {"zone": "a"}, "Port": 80, "Address": ""},
            "Checks": [{"Status": "passing"}, {"Status": "critical"}],
        });
        assert!(check(r#"Service.Tags contains "v2""#, &entry));
        assert!(check(r#""v2" in Service.Tags"#, &entry));
        assert!(check(r#""v3" not in Service.Tags"#, &entry));
        assert!(check(
            r#"Service.Meta.zone == "a" and Service.Port == 80"#,
            &entry
        ));
        assert!(!check(r#"Service.Meta.zone != a"#, &entry));
        assert!(check(r#"Checks.Status == critical"#, &entry));
        assert!(check(
            r#"not (Service.Tags contains "v9") or Service.Port == 1"#,
            &entry
        ));
        assert!(check("Service.Address is empty", &entry));
        assert!(check("Service.Meta is not empty", &entry));
        assert!(check("Service.Meta contains zone", &entry));
        assert!(!check("Service.Nope == x", &entry));
    }

    #[test]
    fn rejects_what_it_cannot_evaluate_with_consuls_prefix() {
        for bad in [
            r#"Service.Tags contains"#,
            r#"Service.Name matches "^w""#,
            r#"(Service.Port == 1"#,
            r#"Service.Name == "x" extra"#,
            r#"Service.Name = "x""#,
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(
                error.starts_with("Failed to create boolean expression evaluator: "),
                "{bad}: {error}"
            );
        }
    }
}
