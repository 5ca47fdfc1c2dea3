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
    /// A `#>` path element on an array: text that is an integer (as
    /// written: `"1 "` is none).
    fn index_of(&self, len: usize) -> Option<usize> {
        match self {
            Step::Index(i) => position(*i, len),
            Step::Key(k) => position(k.parse::<i32>().ok()?.into(), len),
        }
    }

    /// The position a `jsonb_set` / `#-` path element names in an array:
    /// text that is not an integer is 22P02 (`at` counts from 1).
    fn array_index(&self, at: usize) -> Result<i64> {
        match self {
            Step::Index(i) => Ok(*i),
            Step::Key(k) => k.parse::<i32>().map(i64::from).map_err(|_| {
                Error::input(
                    InputError::InvalidText,
                    format!("path element at position {at} is not an integer: \"{k}\""),
                )
            }),
        }
    }

    /// The key a path element names in an object.
    fn key(&self) -> String {
        match self {
            Step::Key(k) => k.clone(),
            Step::Index(i) => i.to_string(),
        }
    }
}

/// A scalar at the top of a `jsonb` value is an array of itself to `->`
/// with position 0 or -1, as in PostgreSQL (`'"a"'::jsonb -> 0` is `"a"`;
/// `#>` finds nothing in it).
fn raw_scalar(value: &Jsonb, index: i64) -> Option<&Jsonb> {
    (position(index, 1).is_some() && is_scalar(value)).then_some(value)
}

/// `value -> step`.
pub fn get<'a>(value: &'a Jsonb, step: &Step) -> Option<&'a Jsonb> {
    match (value, step) {
        (Jsonb::Object(_), Step::Key(key)) => value.field(key),
        (Jsonb::Array(items), Step::Index(i)) => position(*i, items.len()).map(|at| &items[at]),
        (scalar, Step::Index(i)) => raw_scalar(scalar, *i),
        _ => None,
    }
}

/// `value #> path`: each element a key of an object or a position in an
/// array.
pub fn get_path<'a>(value: &'a Jsonb, path: &[Step]) -> Option<&'a Jsonb> {
    path.iter().try_fold(value, |at, step| match at {
        Jsonb::Object(_) => at.field(&step.key()),
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
    remove_at(value, path, 1)
}

/// `jsonb_set(target, path, new, create_missing)`; an empty path changes
/// nothing.
pub fn set(target: Jsonb, path: &[Step], new: Jsonb, create_missing: bool) -> Result<Jsonb> {
    if !matches!(target, Jsonb::Array(_) | Jsonb::Object(_)) {
        return Err(invalid("cannot set path in scalar"));
    }
    if path.is_empty() {
        return Ok(target);
    }
    let mut new = Some(new);
    set_at(target, path, 1, &mut new, create_missing)
}

/// `value` with `new` at `path` (element `at` of the whole path, counting
/// from 1, is its first).
fn set_at(
    value: Jsonb,
    path: &[Step],
    at: usize,
    new: &mut Option<Jsonb>,
    create: bool,
) -> Result<Jsonb> {
    let Some((step, rest)) = path.split_first() else {
        return Ok(new.take().unwrap_or(value));
    };
    Ok(match value {
        Jsonb::Object(mut members) => {
            let key = step.key();
            match members.iter().position(|(k, _)| *k == key) {
                Some(i) => {
                    let old = std::mem::replace(&mut members[i].1, Jsonb::Null);
                    members[i].1 = set_at(old, rest, at + 1, new, create)?;
                }
                None if rest.is_empty() && create => {
                    if let Some(v) = new.take() {
                        members.push((key, v));
                        return Ok(Jsonb::object(members));
                    }
                }
                None => {}
            }
            Jsonb::Object(members)
        }
        Jsonb::Array(mut items) => {
            let index = step.array_index(at)?;
            match position(index, items.len()) {
                Some(i) => {
                    let old = std::mem::replace(&mut items[i], Jsonb::Null);
                    items[i] = set_at(old, rest, at + 1, new, create)?;
                }
                None if rest.is_empty() && create => {
                    if let Some(v) = new.take() {
                        match index < 0 {
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
    })
}

/// `value` without what `path` names (element `at` of the whole path,
/// counting from 1, is its first).
fn remove_at(value: Jsonb, path: &[Step], at: usize) -> Result<Jsonb> {
    let Some((step, rest)) = path.split_first() else {
        return Ok(value);
    };
    Ok(match value {
        Jsonb::Object(members) => {
            let key = step.key();
            let mut kept = Vec::with_capacity(members.len());
            for (k, v) in members {
                match (k == key, rest.is_empty()) {
                    (false, _) => kept.push((k, v)),
                    (true, true) => {}
                    (true, false) => kept.push((k, remove_at(v, rest, at + 1)?)),
                }
            }
            Jsonb::Object(kept)
        }
        Jsonb::Array(items) => {
            let target = position(step.array_index(at)?, items.len());
            let mut kept = Vec::with_capacity(items.len());
            for (i, v) in items.into_iter().enumerate() {
                match (Some(i) == target, rest.is_empty()) {
                    (false, _) => kept.push(v),
                    (true, true) => {}
                    (true, false) => kept.push(remove_at(v, rest, at + 1)?),
                }
            }
            Jsonb::Array(kept)
        }
        scalar => scalar,
    })
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
        assert_eq!(s(r#"{"a":1}"#, &[], "2", true), r#"{"a": 1}"#);
        assert!(set(j("[1,2]"), &path(&["a"]), j("3"), true).is_err());
        assert!(set(j("[1,2]"), &path(&["99999999999"]), j("3"), true).is_err());
        assert!(delete_path(j("[1,2]"), &path(&["1 "])).is_err());
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
        assert_eq!(
            get(&j(r#""abc""#), &Step::Index(0)).unwrap().to_string(),
            r#""abc""#
        );
        assert!(get_path(&j("1"), &path(&["0"])).is_none());
        assert!(get_path(&j("[1,2]"), &path(&["1 "])).is_none());
        assert!(exists(&j(r#"["a","b"]"#), "a"));
        assert!(exists(&j(r#""a""#), "a"));
        assert!(!exists(&j(r#"{"a":1}"#), "b"));
    }
}
