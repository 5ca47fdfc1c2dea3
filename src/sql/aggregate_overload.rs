//! An aggregate that computes some calls itself and leaves the others to
//! the aggregate registered under its name before it: `avg`, `sum` and the
//! variances of `numeric` values (`sql::numeric::overloads`) and of floats
//! (`sql::float_aggregates`), `avg` of intervals
//! (`functions::interval_aggregates`). DataFusion's functions refuse those
//! argument types or compute them otherwise than PostgreSQL.
//!
//! [`Overload`] answers DataFusion for both: for a call [`OwnAggregate`]
//! computes, its types, state and accumulator (with DISTINCT through
//! `sql::distinct_values`); for any other, the wrapped function's.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{internal_err, Result as DFResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, Signature,
    Volatility,
};

use super::analyze::coerced_types;
use super::distinct_values::{DistinctKey, DistinctValues};
use super::json::Flavor;
use crate::error::InputError;

/// The calls an [`Overload`] computes itself, and how.
pub trait OwnAggregate: Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    /// Whether a call on arguments of `types` is computed here.
    fn computes(&self, types: &[DataType]) -> bool;
    /// The types such a call's arguments are coerced to.
    fn coerced(&self, types: &[DataType]) -> Vec<DataType>;
    /// Its result's type, on arguments of the coerced `types`.
    fn return_type(&self, types: &[DataType]) -> DataType;
    /// Its state's fields (without DISTINCT), named after `name`.
    fn state_fields(&self, name: &str, types: &[DataType]) -> Vec<FieldRef>;
    /// Its accumulator, of values of type `input`.
    fn accumulator(&self, input: &DataType) -> Box<dyn Accumulator>;
    /// Its accumulator for a window frame that moves (one that can take
    /// values back out).
    fn sliding_accumulator(&self, input: &DataType) -> Box<dyn Accumulator> {
        self.accumulator(input)
    }
    /// What DISTINCT tells apart.
    fn distinct_key(&self) -> DistinctKey;
    /// Whether the wrapped function's result is of its argument's type,
    /// named types included (`max` of a `char(4)` is a `char(4)`, padded
    /// as it is sent; DataFusion's result field had no metadata). Such a
    /// function takes the largest or smallest of its arguments, so it is
    /// refused on json values, which PostgreSQL does not order.
    fn keeps_argument_type(&self) -> bool {
        false
    }
}

/// The aggregates of sums and moments PostgreSQL has for `numeric` values
/// and floats, each computed otherwise than DataFusion does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Moment {
    Sum,
    Avg,
    /// `var_samp` / `var_pop`, or their square roots (`stddev_*`).
    Variance {
        sample: bool,
        root: bool,
    },
}

/// The names of the [`Moment`]s.
pub const MOMENTS: &[(&str, Moment)] = &[
    ("sum", Moment::Sum),
    ("avg", Moment::Avg),
    (
        "var_samp",
        Moment::Variance {
            sample: true,
            root: false,
        },
    ),
    (
        "var_pop",
        Moment::Variance {
            sample: false,
            root: false,
        },
    ),
    (
        "stddev",
        Moment::Variance {
            sample: true,
            root: true,
        },
    ),
    (
        "stddev_samp",
        Moment::Variance {
            sample: true,
            root: true,
        },
    ),
    (
        "stddev_pop",
        Moment::Variance {
            sample: false,
            root: true,
        },
    ),
];

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Overload<O> {
    inner: Arc<AggregateUDF>,
    own: O,
    signature: Signature,
}

impl<O: OwnAggregate> Overload<O> {
    /// `own` over `inner`, the aggregate registered under the name.
    pub fn udaf(inner: Arc<AggregateUDF>, own: O) -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            inner,
            own,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    }

    /// The type of the argument of a call computed here, as its
    /// accumulator sees it.
    fn computed(&self, args: &AccumulatorArgs) -> Option<DataType> {
        let input = args.exprs.first()?.data_type(args.schema).ok()?;
        self.own
            .computes(std::slice::from_ref(&input))
            .then_some(input)
    }
}

fn types_of(fields: &[FieldRef]) -> Vec<DataType> {
    fields.iter().map(|f| f.data_type().clone()).collect()
}

impl<O: OwnAggregate> AggregateUDFImpl for Overload<O> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DFResult<Vec<DataType>> {
        match self.own.computes(arg_types) {
            true => Ok(self.own.coerced(arg_types)),
            false => coerced_types(arg_types, self.inner.as_ref()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> DFResult<DataType> {
        match self.own.computes(arg_types) {
            true => Ok(self.own.return_type(arg_types)),
            false => self.inner.return_type(arg_types),
        }
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> DFResult<FieldRef> {
        let types = types_of(arg_fields);
        match self.own.computes(&types) {
            true => Ok(Arc::new(Field::new(
                self.name(),
                self.own.return_type(&types),
                true,
            ))),
            false if self.own.keeps_argument_type() => {
                // PostgreSQL has no order of json values to take the
                // largest by (DataFusion's would go by their text).
                if let Some(flavor) = arg_fields.first().and_then(|f| Flavor::of(f)) {
                    let name = match flavor {
                        Flavor::Json => "json",
                        Flavor::Jsonb => "jsonb",
                    };
                    return Err(crate::error::Error::input(
                        InputError::UndefinedFunction,
                        format!("function {}({name}) does not exist", self.name()),
                    )
                    .into());
                }
                let field = self.inner.return_field(arg_fields)?;
                let metadata = arg_fields.first().map(|f| f.metadata().clone());
                Ok(match metadata {
                    Some(metadata) if !metadata.is_empty() => {
                        Arc::new(field.as_ref().clone().with_metadata(metadata))
                    }
                    _ => field,
                })
            }
            false => self.inner.return_field(arg_fields),
        }
    }

    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DFResult<Vec<FieldRef>> {
        let types = types_of(args.input_fields);
        match (self.own.computes(&types), args.is_distinct) {
            (true, true) => Ok(DistinctValues::state_fields(
                args.name,
                &self.own.coerced(&types)[0],
            )),
            (true, false) => Ok(self.own.state_fields(args.name, &types)),
            (false, _) => self.inner.state_fields(args),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        match (self.computed(&args), args.is_distinct) {
            (Some(input), true) => Ok(Box::new(DistinctValues::new(
                self.own.accumulator(&input),
                input,
                self.own.distinct_key(),
            ))),
            (Some(input), false) => Ok(self.own.accumulator(&input)),
            (None, _) => self.inner.accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> DFResult<Box<dyn Accumulator>> {
        match self.computed(&args) {
            Some(input) => Ok(self.own.sliding_accumulator(&input)),
            None => self.inner.create_sliding_accumulator(args),
        }
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.computed(&args).is_none() && self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> DFResult<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn default_value(&self, data_type: &DataType) -> DFResult<ScalarValue> {
        self.inner.default_value(data_type)
    }
}

/// How a moving window frame's aggregate is taken: afresh over the
/// frame's values, in order, as PostgreSQL does for an aggregate that
/// cannot take values back out ([`FrameAccumulator`]).
pub trait FrameAggregate: Debug + Send + Sync + 'static {
    type Value: Debug + Send + Sync;
    /// The non-NULL values of an input array.
    fn values(&self, array: &ArrayRef) -> Vec<Self::Value>;
    /// The aggregate of a frame's values.
    fn aggregate(&self, values: &VecDeque<Self::Value>) -> DFResult<ScalarValue>;
}

/// The aggregate of a window frame that moves: the frame's values, in
/// order, aggregated afresh when the frame's result is asked for.
#[derive(Debug)]
pub struct FrameAccumulator<A: FrameAggregate> {
    aggregate: A,
    values: VecDeque<A::Value>,
}

impl<A: FrameAggregate> FrameAccumulator<A> {
    pub fn boxed(aggregate: A) -> Box<dyn Accumulator> {
        Box::new(Self {
            aggregate,
            values: VecDeque::new(),
        })
    }
}

impl<A: FrameAggregate> Accumulator for FrameAccumulator<A> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        self.values.extend(self.aggregate.values(&values[0]));
        Ok(())
    }

    /// The frame's first values leave it.
    fn retract_batch(&mut self, values: &[ArrayRef]) -> DFResult<()> {
        let leaving = self.aggregate.values(&values[0]).len();
        self.values.drain(..leaving.min(self.values.len()));
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, _states: &[ArrayRef]) -> DFResult<()> {
        internal_err!("a window frame's aggregate has no partial states")
    }

    fn state(&mut self) -> DFResult<Vec<ScalarValue>> {
        internal_err!("a window frame's aggregate has no partial states")
    }

    fn evaluate(&mut self) -> DFResult<ScalarValue> {
        self.aggregate.aggregate(&self.values)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.len() * std::mem::size_of::<A::Value>()
    }
}
