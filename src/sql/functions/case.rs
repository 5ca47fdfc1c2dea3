//! `upper` and `lower` as PostgreSQL's (in a UTF-8 database with libc's
//! locale) change case: a character at a time, each to one character
//! (Unicode's simple case mapping). DataFusion's used Rust's full
//! mapping, so `upper('straße')` was `STRASSE` (PostgreSQL `STRAßE`),
//! `lower('İ')` had a combining dot, and a final sigma became `ς`.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;

use crate::sql::analyze::array_udf;

pub fn upper() -> ScalarUDF {
    case_udf("upper", |c| {
        let mut upper = c.to_uppercase();
        // A character whose capital is two (ß, ŉ, ligatures) stays.
        match (upper.next(), upper.next()) {
            (Some(one), None) => one,
            _ => c,
        }
    })
}

pub fn lower() -> ScalarUDF {
    // Only İ has a lower case of two characters (i and a dot): `i`.
    case_udf("lower", |c| c.to_lowercase().next().unwrap_or(c))
}

fn case_udf(name: &str, map: fn(char) -> char) -> ScalarUDF {
    let udf = array_udf(name, vec![DataType::Utf8], DataType::Utf8, move |arrays| {
        let text = arrays[0].as_string::<i32>();
        let mapped: StringArray = text
            .iter()
            .map(|s| s.map(|s| s.chars().map(map).collect::<String>()))
            .collect();
        Ok(Arc::new(mapped))
    });
    Arc::unwrap_or_clone(udf)
}
