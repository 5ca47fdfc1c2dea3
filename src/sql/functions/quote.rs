//! `quote_literal` and `quote_ident`, and [`ident`], the identifier
//! quoting PostgreSQL's catalog functions (`pg_get_indexdef`) also use.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

use super::like_arguments;

/// `quote_literal(text)`: the text as a string literal, quotes doubled, and
/// written `E'...'` with backslashes doubled when it has any.
pub fn quote_literal() -> ScalarUDF {
    text_function("quote_literal", literal)
}

/// `text` as `quote_literal` writes it.
pub fn literal(text: &str) -> String {
    let quoted = text.replace('\'', "''");
    match quoted.contains('\\') {
        true => format!("E'{}'", quoted.replace('\\', "\\\\")),
        false => format!("'{quoted}'"),
    }
}

/// `quote_ident(text)`: the text as an identifier, quoted only when it
/// must be ([`ident`]).
pub fn quote_ident() -> ScalarUDF {
    text_function("quote_ident", ident)
}

/// The function `name(text)` that is `quote` of each text.
fn text_function(name: &str, quote: fn(&str) -> String) -> ScalarUDF {
    create_udf(
        name,
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let texts = args[0].clone().into_array(1)?;
            let quoted: StringArray = texts
                .as_string::<i32>()
                .iter()
                .map(|t| t.map(quote))
                .collect();
            let quoted: ArrayRef = Arc::new(quoted);
            like_arguments(args, quoted)
        }),
    )
}

/// `name` as PostgreSQL's `quote_identifier` writes it: as it is when it
/// is lower-case letters, digits and underscores (a `$` is quoted), not
/// starting with a
/// digit, and not a keyword that cannot be a column name; otherwise in
/// double quotes, inner ones doubled.
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !NOT_UNRESERVED_KEYWORDS.contains(&name);
    match plain {
        true => name.to_string(),
        false => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

/// PostgreSQL 15's reserved, column-name and type-or-function-name
/// keywords (`kwlist.h`): the ones `quote_identifier` quotes.
const NOT_UNRESERVED_KEYWORDS: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_as_postgresql_quotes_them() {
        // quote_ident's answers in PostgreSQL 15.
        for (name, quoted) in [
            ("id", "id"),
            ("name", "name"),
            ("order", "\"order\""),
            ("Mixed", "\"Mixed\""),
            ("a b", "\"a b\""),
            ("1a", "\"1a\""),
            ("_x1", "_x1"),
            ("ab$c", "\"ab$c\""),
            ("say\"hi", "\"say\"\"hi\""),
            ("", "\"\""),
        ] {
            assert_eq!(ident(name), quoted, "{name}");
        }
    }
}
