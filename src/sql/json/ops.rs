//! What `jsonb`'s operators and functions do to values, as PostgreSQL
//! defines them: `->` / `#>` (member, item, path), `@>` (containment),
//! `?` (key exists), `||` (concatenation), `-` / `#-` (deletion),
//! `jsonb_set` and `jsonb_strip_nulls`.

use super::value::Jsonb;
use crate::error::{Error, InputError, Result};

/// A step of a path: an object key or an array position (`->` takes
/// either; `#>` takes text that is read as a position on arrays).
#[derive(Debug, Clone)]
pub enum Step {
    Key(String),
    Index(i64),
}

/// The position `index` counts in an array of `len` items (negative
/// counts from the end).
fn position(index: i64, len: usize) -> Option<usize> {
    let at = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&at).then_some(at as usize)
}

impl Step {
    /// A `#>` path element: on an array, text that is an integer.
    fn index_of(&self, len: usize) -> Option<usize> {
        match self {
            Step::Index(i) => position(*i, len),
            Step::Key(k) => position(k.trim().parse().ok()?, len),
        }
    }
}

/// `value -> step`.
pub fn get<'a>(value: &'a Jsonb, step: &Step) -> Option<&'a Jsonb> {
    match (value, step) {
        (Jsonb::Object(_), Step::Key(key)) => value.field(key),
        (Jsonb::Array(items), Step::Index(i)) => position(*i, items.len()).map(|at| &items[at]),
        _ => None,
    }
}

/// `value #> path`: each element a key of an object or a position in an
/// array.
pub fn get_path<'a>(value: &'a Jsonb, path: &[Step]) -> Option<&'a Jsonb> {
    path.iter().try_fold(value, |at, step| match at {
        Jsonb::Object(_) => match step {
            Step::Key(key) => at.field(key),
            Step::Index(i) => at.field(&i.to_string()),
        },
        Jsonb::Array(items) => step.index_of(items.len()).map(|i| &items[i]),
        _ => None,
    })
}

/// `a @> b`.
pub fn contains(a: &Jsonb, b: &Jsonb) -> bool {
    match (a, b) {
        // At the top, an array contains a scalar it holds.
        (Jsonb::Array(items), scalar) if is_scalar(scalar) => {
            items.iter().any(|item| item.same(scalar))
        }
        _ => deep_contains(a, b),
    }
}

fn is_scalar(value: &Jsonb) -> bool {
    !matches!(value, Jsonb::Array(_) | Jsonb::Object(_))
}

fn deep_contains(a: &Jsonb, b: &Jsonb) -> bool {
    match (a, b) {
        (Jsonb::Object(_), Jsonb::Object(wanted)) => wanted.iter().all(|(key, want)| {
            a.field(key).is_some_and(|have| match is_scalar(want) {
                true => have.same(want),
                false => same_kind(have, want) && deep_contains(have, want),
            })
        }),
        (Jsonb::Array(items), Jsonb::Array(wanted)) => wanted.iter().all(|want| {
            items.iter().any(|have| match is_scalar(want) {
                true => have.same(want),
                false => same_kind(have, want) && deep_contains(have, want),
            })
        }),
        (a, b) if is_scalar(a) && is_scalar(b) => a.same(b),
        _ => false,
    }
}

fn same_kind(a: &Jsonb, b: &Jsonb) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// `value ? key`: a key of an object, a string item of an array, or the
/// string itself.
pub fn exists(value: &Jsonb, key: &str) -> bool {
    match value {
        Jsonb::Object(_) => value.field(key).is_some(),
        Jsonb::Array(items) => items
            .iter()
            .any(|item| matches!(item, Jsonb::String(s) if s == key)),
        Jsonb::String(s) => s == key,
        _ => false,
    }
}

/// `a || b`: two objects merge (b's members win), anything else makes
/// one array of both sides' items.
pub fn concat(a: Jsonb, b: Jsonb) -> Jsonb {
    match (a, b) {
        (Jsonb::Object(mut left), Jsonb::Object(right)) => {
            left.extend(right);
            Jsonb::object(left)
        }
        (a, b) => {
            let mut items = into_items(a);
            items.extend(into_items(b));
            Jsonb::Array(items)
        }
    }
}

fn into_items(value: Jsonb) -> Vec<Jsonb> {
    match value {
        Jsonb::Array(items) => items,
        other => vec![other],
    }
}

/// `value - key`: an object without the key, an array without the
/// strings equal to it.
pub fn delete_key(value: Jsonb, key: &str) -> Result<Jsonb> {
    match value {
        Jsonb::Object(members) => Ok(Jsonb::Object(
            members.into_iter().filter(|(k, _)| k != key).collect(),
        )),
        Jsonb::Array(items) => Ok(Jsonb::Array(
            items
                .into_iter()
                .filter(|item| !matches!(item, Jsonb::String(s) if s == key))
                .collect(),
        )),
        _ => Err(invalid("cannot delete from scalar")),
    }
}

/// `value - index`: an array without that item.
pub fn delete_index(value: Jsonb, index: i64) -> Result<Jsonb> {
    match value {
        Jsonb::Array(mut items) => {
            if let Some(at) = position(index, items.len()) {
                items.remove(at);
            }
            Ok(Jsonb::Array(items))
        }
        Jsonb::Object(_) => Err(invalid("cannot delete from object using integer index")),
        _ => Err(invalid("cannot delete from scalar")),
    }
}

/// `value #- path`: the value without what the path names.
pub fn delete_path(value: Jsonb, path: &[Step]) -> Result<Jsonb> {
    if !matches!(value, Jsonb::Array(_) | Jsonb::Object(_)) {
        return Err(invalid("cannot delete path in scalar"));
    }
    Ok(edit(value, path, &mut |_| None))
}

/// `jsonb_set(target, path, new, create_missing)`.
pub fn set(target: Jsonb, path: &[Step], new: Jsonb, create_missing: bool) -> Result<Jsonb> {
    if !matches!(target, Jsonb::Array(_) | Jsonb::Object(_)) {
        return Err(invalid("cannot set path in scalar"));
    }
    let mut new = Some(new);
    Ok(set_at(target, path, &mut new, create_missing))
}

fn set_at(value: Jsonb, path: &[Step], new: &mut Option<Jsonb>, create: bool) -> Jsonb {
    let Some((step, rest)) = path.split_first() else {
        return new.take().unwrap_or(value);
    };
    match value {
        Jsonb::Object(mut members) => {
            let key = match step {
                Step::Key(k) => k.clone(),
                Step::Index(i) => i.to_string(),
            };
            match members.iter().position(|(k, _)| *k == key) {
                Some(at) => {
                    let old = std::mem::replace(&mut members[at].1, Jsonb::Null);
                    members[at].1 = set_at(old, rest, new, create);
                }
                None if rest.is_empty() && create => {
                    if let Some(v) = new.take() {
                        members.push((key, v));
                        return Jsonb::object(members);
                    }
                }
                None => {}
            }
            Jsonb::Object(members)
        }
        Jsonb::Array(mut items) => {
            match step.index_of(items.len()) {
                Some(at) => {
                    let old = std::mem::replace(&mut items[at], Jsonb::Null);
                    items[at] = set_at(old, rest, new, create);
                }
                None if rest.is_empty() && create => {
                    let before_start = matches!(step, Step::Index(i) if *i < 0)
                        || matches!(step, Step::Key(k) if k.trim().starts_with('-'));
                    if let Some(v) = new.take() {
                        match before_start {
                            true => items.insert(0, v),
                            false => items.push(v),
                        }
                    }
                }
                None => {}
            }
            Jsonb::Array(items)
        }
        scalar => scalar,
    }
}

/// `value` with what `path` names replaced by `replace`'s answer, or
/// removed where it answers None.
fn edit(value: Jsonb, path: &[Step], replace: &mut dyn FnMut(Jsonb) -> Option<Jsonb>) -> Jsonb {
    let Some((step, rest)) = path.split_first() else {
        return value;
    };
    match value {
        Jsonb::Object(members) => {
            let key = match step {
                Step::Key(k) => k.clone(),
                Step::Index(i) => i.to_string(),
            };
            Jsonb::Object(
                members
                    .into_iter()
                    .filter_map(|(k, v)| match k == key {
                        false => Some((k, v)),
                        true if rest.is_empty() => replace(v).map(|v| (k, v)),
                        true => Some((k, edit(v, rest, replace))),
                    })
                    .collect(),
            )
        }
        Jsonb::Array(items) => {
            let target = step.index_of(items.len());
            Jsonb::Array(
                items
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, v)| match Some(i) == target {
                        false => Some(v),
                        true if rest.is_empty() => replace(v),
                        true => Some(edit(v, rest, replace)),
                    })
                    .collect(),
            )
        }
        scalar => scalar,
    }
}

/// `jsonb_strip_nulls`: object members whose value is null removed, at
/// every depth (array items stay).
pub fn strip_nulls(value: Jsonb) -> Jsonb {
    match value {
        Jsonb::Object(members) => Jsonb::Object(
            members
                .into_iter()
                .filter(|(_, v)| *v != Jsonb::Null)
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Jsonb::Array(items) => Jsonb::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// 22023, as PostgreSQL reports a function given the wrong kind of value.
pub fn invalid(message: &str) -> Error {
    Error::input(InputError::InvalidParameterValue, message)
}

#[cfg(test)]
mod tests {
    use super::super::value::parse_jsonb;
    use super::*;

    fn j(text: &str) -> Jsonb {
        parse_jsonb(text).unwrap()
    }

    fn path(steps: &[&str]) -> Vec<Step> {
        steps.iter().map(|s| Step::Key(s.to_string())).collect()
    }

    #[test]
    fn containment_as_postgresql() {
        assert!(contains(&j(r#"{"a":1,"b":[1,2]}"#), &j(r#"{"b":[2]}"#)));
        assert!(contains(&j("[1,2]"), &j("1")));
        assert!(!contains(&j("[[1,2]]"), &j("[1]")));
        assert!(contains(&j("[[1,2]]"), &j("[[1]]")));
        assert!(contains(&j(r#"{"a": 1.0}"#), &j(r#"{"a": 1}"#)));
        assert!(contains(&j(r#"{"a":[1,2,3],"b":1}"#), &j(r#"{"a":[1,2]}"#)));
    }

    #[test]
    fn concat_and_delete() {
        let cat = |a: &str, b: &str| concat(j(a), j(b)).to_string();
        assert_eq!(cat(r#"{"a":1}"#, r#"{"b":2}"#), r#"{"a": 1, "b": 2}"#);
        assert_eq!(cat(r#"{"a":1}"#, "[2]"), r#"[{"a": 1}, 2]"#);
        assert_eq!(cat("1", "2"), "[1, 2]");
        assert_eq!(
            cat(r#"{"a":{"b":1}}"#, r#"{"a":{"c":2}}"#),
            r#"{"a": {"c": 2}}"#
        );
        assert_eq!(delete_index(j("[1,2,3]"), 1).unwrap().to_string(), "[1, 3]");
        assert_eq!(
            delete_index(j("[1,2,3]"), -1).unwrap().to_string(),
            "[1, 2]"
        );
        assert_eq!(
            delete_key(j(r#"{"a":1,"b":2}"#), "a").unwrap().to_string(),
            r#"{"b": 2}"#
        );
        assert!(delete_key(j("1"), "a").is_err());
        assert_eq!(
            delete_path(j("[1,[2,3]]"), &path(&["1", "0"]))
                .unwrap()
                .to_string(),
            "[1, [3]]"
        );
    }

    #[test]
    fn set_as_postgresql() {
        let s = |t: &str, p: &[&str], v: &str, c: bool| {
            set(j(t), &path(p), j(v), c).unwrap().to_string()
        };
        assert_eq!(
            s(r#"{"a":[1,2]}"#, &["a", "0"], r#""x""#, true),
            r#"{"a": ["x", 2]}"#
        );
        assert_eq!(s(r#"{"a":1}"#, &["b"], "2", true), r#"{"a": 1, "b": 2}"#);
        assert_eq!(s(r#"{"a":1}"#, &["b"], "2", false), r#"{"a": 1}"#);
        assert_eq!(s("[1,2]", &["5"], "3", true), "[1, 2, 3]");
        assert_eq!(s("[1,2]", &["-1"], "3", true), "[1, 3]");
        assert_eq!(s("[1,2]", &["-5"], "3", true), "[3, 1, 2]");
    }

    #[test]
    fn paths_and_members() {
        let v = j(r#"{"a":{"b":[1,2]}}"#);
        assert_eq!(
            get_path(&v, &path(&["a", "b", "1"])).unwrap().to_string(),
            "2"
        );
        assert_eq!(
            get(&j("[1,2,3]"), &Step::Index(-1)).unwrap().to_string(),
            "3"
        );
        assert!(get(&j("[1]"), &Step::Key("a".into())).is_none());
        assert!(exists(&j(r#"["a","b"]"#), "a"));
        assert!(exists(&j(r#""a""#), "a"));
        assert!(!exists(&j(r#"{"a":1}"#), "b"));
    }
}
