//! PostgreSQL's functions where DataFusion has none, or one that answers
//! differently.
//!
//! - [`rename_calls`], run on a statement once its result columns are
//!   named (`names`: `ceiling(x)` is a column `ceiling`), reads the calls
//!   PostgreSQL spells otherwise: `mod(a, b)` is `a % b`, `div(a, b)` the truncated quotient
//!   as numeric, `ceiling` is `ceil`, `sign` is `signum`, `every` is
//!   `bool_and`; `to_timestamp(text, template)` is [`template`]'s, and
//!   `LIKE ... ESCAPE 'c'` with a literal pattern is rewritten to the
//!   backslash escapes DataFusion knows.
//! - [`extract`]: `EXTRACT` returns numeric and `date_part` double
//!   precision, with the seconds' fraction (DataFusion gives whole seconds
//!   as an integer); `substring(text FROM pattern)` is a regular
//!   expression match.
//! - [`age`]: PostgreSQL's years, months and days between two timestamps.
//! - `quote_literal`, and `current_setting(name [, missing_ok])`, which
//!   [`inline_settings`] replaces by the session's value before planning
//!   (42704 for a setting that does not exist, which asyncpg's first
//!   `current_setting('jit')` expects of a server without it);
//!   `session_user()` (a DEFAULT's `current_user`) answers the
//!   [`SessionUser`] of the session running it.
//! - [`encoding`]: `encode` and `decode` (base64 padded and in lines,
//!   `escape`).
//! - [`format`]: `format(template, ...)`.
//! - [`make`]: `make_interval`, `make_timestamp`, `make_timestamptz`,
//!   `make_time`.
//! - [`regexp`]: `regexp_split_to_array`, `regexp_matches` and
//!   `regexp_substr`.
//! - [`hex`]: `to_hex` of an `integer` in 32 bits.
//! - [`case`]: `upper` and `lower` a character at a time.
//! - [`info`]: the system information functions psql's `\dt+`, `\l+`
//!   and `\df` call (`pg_size_pretty`, sizes, comments, visibility).
//! - [`clock`]: `now()` and `current_timestamp` (`current_date`,
//!   `current_time`) are the transaction's start, as in PostgreSQL;
//!   `statement_timestamp()`, `transaction_timestamp()`,
//!   `clock_timestamp()`, `pg_sleep()`.
//! - [`mode`]: `mode() WITHIN GROUP (ORDER BY x)`; [`percentile`]:
//!   `percentile_cont(f) WITHIN GROUP (ORDER BY x)`.
//! - [`interval_aggregates`]: `min` and `max` of intervals, by length, and
//!   `avg` of them.
//! - [`numbers`]: `scale`, `min_scale`, `trim_scale`, `width_bucket`.
//! - [`degrees`]: `sind`, `cosd`, ... exact at the angles PostgreSQL's are.
//! - [`template`]: `to_char`, `to_date` and `to_timestamp` with
//!   PostgreSQL's templates (`YYYY-MM-DD HH24:MI:SS`, `FM9990.00`);
//!   DataFusion's take chrono's `%Y-%m-%d`, and would print a PostgreSQL
//!   template back as it is.

mod age;
mod calls;
mod case;
mod clock;
mod degrees;
mod encoding;
mod extract;
mod format;
mod hex;
mod info;
mod interval_aggregates;
mod like;
mod make;
mod membership;
mod mode;
mod number_template;
mod numbers;
mod parse_template;
mod percentile;
pub(super) mod quote;
mod regexp;
mod settings;
mod subscripts;
mod template;

use super::analyze::like_arguments;
pub use calls::{rename_calls, rename_calls_in};
pub use clock::RunningStatement;
use datafusion::common::DataFusionError;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;
pub use encoding::bytea_input;
pub use extract::PgExprPlanner;
pub use interval_aggregates::{interval_max, interval_min};
pub use membership::{ANY_EQUAL, IN_ARRAY};
pub use regexp::{dot_matches_newline, REGEXP_MATCHES_LIST};
pub use settings::{inline_settings, SessionUser};
pub use subscripts::{pg_subscripts, GENERATE_SUBSCRIPTS_LIST, PG_EXPANDARRAY_LIST};

/// An input error raised inside a function, as DataFusion carries it.
pub(super) fn input_error(
    kind: crate::error::InputError,
    message: impl std::fmt::Display,
) -> DataFusionError {
    crate::error::Error::input(kind, message).into()
}

/// The name `to_timestamp(text, template)` is planned under.
const TO_TIMESTAMP_TEMPLATE: &str = "to_timestamp_template";

/// Registers the functions of this module, replacing DataFusion's of the
/// same names.
pub fn register(ctx: &SessionContext) {
    replace(
        ctx,
        ScalarUDF::new_from_impl(extract::DatePart::double_precision()),
    );
    replace(ctx, ScalarUDF::new_from_impl(template::ToChar::default()));
    replace(
        ctx,
        ScalarUDF::new_from_impl(parse_template::ParseTemplate::to_date()),
    );
    replace(
        ctx,
        ScalarUDF::new_from_impl(parse_template::ParseTemplate::to_timestamp(
            TO_TIMESTAMP_TEMPLATE,
        )),
    );
    replace(ctx, quote::quote_literal());
    replace(ctx, quote::quote_ident());
    replace(ctx, format::format());
    replace(ctx, encoding::encode());
    replace(ctx, encoding::decode());
    replace(ctx, make::make_interval());
    replace(ctx, make::make_date());
    replace(ctx, make::make_timestamp());
    replace(ctx, make::make_timestamptz());
    replace(ctx, make::make_time());
    replace(ctx, regexp::regexp_split_to_array());
    replace(ctx, regexp::regexp_matches_list());
    replace(ctx, regexp::regexp_match());
    replace(ctx, regexp::regexp_substr());
    replace(ctx, regexp::regexp_replace());
    interval_aggregates::register_average(ctx);
    for membership in membership::membership_functions() {
        replace(ctx, membership);
    }
    replace(ctx, like::like_escape());
    replace(ctx, like::similar_to_escape());
    replace(ctx, subscripts::generate_subscripts_list());
    replace(ctx, subscripts::pg_expandarray_list());
    replace(ctx, subscripts::array_fill());
    replace(ctx, ScalarUDF::new_from_impl(age::Age::default()));
    replace(ctx, settings::session_user());
    replace(ctx, hex::to_hex());
    replace(ctx, case::upper());
    replace(ctx, case::lower());
    replace(ctx, numbers::width_bucket());
    for udf in info::udfs() {
        replace(ctx, udf);
    }
    for udf in degrees::udfs() {
        replace(ctx, udf);
    }
    register_clock(ctx);
    ctx.register_udaf(mode::mode());
    // DataFusion's goes with its alias (`quantile_cont`): left under it,
    // a state rebuilt from this one could take it back under the name.
    ctx.deregister_udaf("percentile_cont");
    ctx.register_udaf(percentile::percentile_cont());
}

/// DataFusion's current-time functions at the transaction's start, and
/// PostgreSQL's others ([`clock`]).
fn register_clock(ctx: &SessionContext) {
    use clock::TransactionTime;
    use datafusion::execution::FunctionRegistry;
    let Ok(now) = ctx.udf("now") else {
        return;
    };
    for name in ["current_date", "current_time"] {
        if let Ok(udf) = ctx.udf(name) {
            replace(ctx, TransactionTime::of_transaction(udf));
        }
    }
    replace(ctx, TransactionTime::transaction_timestamp(now.clone()));
    replace(ctx, TransactionTime::statement_timestamp(now.clone()));
    replace(ctx, TransactionTime::of_transaction(now));
    replace(ctx, clock::clock_timestamp());
    replace(ctx, clock::pg_sleep());
}

/// Registers `udf` in place of DataFusion's function of its name, aliases
/// included: a session state copied from this one registers its functions
/// again in no set order, and an alias left behind (`datepart`) would
/// bring DataFusion's back under the name.
fn replace(ctx: &SessionContext, udf: ScalarUDF) {
    ctx.deregister_udf(udf.name());
    ctx.register_udf(udf);
}
