//! PostgreSQL's `numeric` as a value: any number of digits, and per value
//! the count of digits it shows after the point (its display scale), so
//! `2.50` stays `2.50` and `1 / 3` has PostgreSQL's twenty digits.
//!
//! - [`value`]: the value, its text form (`numeric_in` / `numeric_out`),
//!   its order (NaN above `Infinity`) and the conversions to and from
//!   integers, floats and fixed-scale decimals.
//! - [`arith`]: `+ - * / %`, `div`, `round`, `trunc`, `ceil`, `floor`,
//!   `sqrt` with PostgreSQL's result scales.
//! - [`transcendental`]: `exp`, `ln`, `log`, `power`.
//! - [`bytes`]: the sortable bytes ShardForge keeps a value as, and
//!   PostgreSQL's binary wire form.
//!
//! A `numeric(p, s)` column is an Arrow decimal of that scale and needs
//! none of this; this is the type of values whose scale is their own.
//! It knows no SQL and no storage: those layers convert to and from it.

mod arith;
mod bytes;
mod transcendental;
mod value;

pub use arith::{MAX_DISPLAY_SCALE, MIN_SIG_DIGITS};
pub use bytes::value_part;
pub use value::{too_large_for, Numeric, MAX_INTEGER_DIGITS, MAX_SCALE};
