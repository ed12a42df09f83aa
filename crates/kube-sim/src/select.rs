//! Label and field selectors, parsed the way the API server parses them.

use std::collections::BTreeMap;

use super::SimError;
use super::store::Kind;

#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelReq {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelReq>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_values(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SimError> {
        let bad = || SimError::BadRequest(format!("unable to parse requirement: {s:?}"));
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                LabelReq::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                LabelReq::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                LabelReq::NotIn(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                LabelReq::In(k.trim().into(), set_values(v).ok_or_else(bad)?)
            } else if let Some(k) = part.strip_prefix('!') {
                LabelReq::NotExists(k.trim().into())
            } else if part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                LabelReq::Exists(part.into())
            } else {
                return Err(bad());
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.0.iter().all(|r| match r {
            LabelReq::Equals(k, v) => get(k) == Some(v),
            LabelReq::NotEquals(k, v) => get(k) != Some(v),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A field an object can be selected by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Name,
    Namespace,
    /// Pods only.
    Phase,
}

/// A parsed `fieldSelector`: `metadata.name`, `metadata.namespace` (namespaced kinds: the API
/// server's field set of a Node has no namespace) and (for pods) `status.phase`, with `=`, `==`
/// or `!=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(Field, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str, kind: Kind) -> Result<Self, SimError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(SimError::BadRequest(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" if kind.namespaced() => Field::Namespace,
                "status.phase" if kind == Kind::Pod => Field::Phase,
                other => {
                    return Err(SimError::BadRequest(format!(
                        "field label not supported: {other}"
                    )));
                }
            };
            reqs.push((field, equal, value.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `get` answers the value of a field for the object at hand.
    pub fn matches(&self, get: impl Fn(Field) -> String) -> bool {
        self.0
            .iter()
            .all(|(field, equal, value)| (get(*field) == *value) == *equal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, api)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("app=web,tier=back", false),
            ("missing!=x", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(Some(&l)),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selector_fields_and_operators() {
        let get = |f: Field| match f {
            Field::Name => "p1".to_string(),
            Field::Namespace => "shop".to_string(),
            Field::Phase => "Running".to_string(),
        };
        for (sel, want) in [
            ("metadata.name=p1", true),
            ("metadata.namespace==shop", true),
            ("status.phase!=Running", false),
            ("status.phase!=Running,status.phase!=Pending", false),
            ("status.phase!=Succeeded,status.phase!=Failed", true),
        ] {
            assert_eq!(
                FieldSelector::parse(sel, Kind::Pod).unwrap().matches(get),
                want,
                "{sel}"
            );
        }
        assert!(FieldSelector::parse("status.phase=Running", Kind::Deployment).is_err());
        assert!(FieldSelector::parse("spec.nodeName=x", Kind::Pod).is_err());
        assert!(FieldSelector::parse("metadata.name=a", Kind::Node).is_ok());
        assert!(FieldSelector::parse("metadata.namespace=a", Kind::Node).is_err());
        assert!(FieldSelector::parse("metadata.namespace=a", Kind::StatefulSet).is_ok());
    }
}
