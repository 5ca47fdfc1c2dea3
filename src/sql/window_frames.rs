//! Windows ordered by a value DataFusion cannot do range arithmetic on: an
//! unconstrained `numeric` (its own bytes), `bytea`, `uuid`, a `jsonb`'s
//! sort key (`sql::json::order`). Every window
//! with an ORDER BY has a RANGE frame (by default from the partition's
//! first row to the current row's last peer), and DataFusion refused any
//! RANGE frame over such a type as it typed the frame's bounds, even one
//! that needs no arithmetic: `row_number() OVER (ORDER BY price)` failed.
//!
//! [`peer_frames`] makes such a frame, when its bounds are only UNBOUNDED
//! and CURRENT ROW, the GROUPS frame of the same bounds: both reach to the
//! current row's first or last peer (rows whose ORDER BY values are equal;
//! a window orders unconstrained numerics by their values alone,
//! `sql::numeric`, so `1.5` and `1.50` are peers). A RANGE frame with an
//! offset (`RANGE 1 PRECEDING`) over such a type stays refused.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::logical_expr::{
    Expr, ExprSchemable, WindowFrame, WindowFrameBound, WindowFrameUnits,
};

/// The window function `expr` with its RANGE frame as GROUPS, if it is
/// one of the module's.
pub fn peer_frames(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let Expr::WindowFunction(mut window) = expr else {
        return Transformed::no(expr);
    };
    let params = &mut window.params;
    let frame = &params.window_frame;
    let no_offset = |b: &WindowFrameBound| b.is_unbounded() || *b == WindowFrameBound::CurrentRow;
    let no_arithmetic = params
        .order_by
        .first()
        .and_then(|sort| sort.expr.get_type(schema).ok())
        .is_some_and(|t| {
            matches!(
                t,
                DataType::LargeBinary | DataType::Binary | DataType::FixedSizeBinary(_)
            )
        });
    if frame.units != WindowFrameUnits::Range
        || !no_offset(&frame.start_bound)
        || !no_offset(&frame.end_bound)
        || !no_arithmetic
    {
        return Transformed::no(Expr::WindowFunction(window));
    }
    params.window_frame = WindowFrame::new_bounds(
        WindowFrameUnits::Groups,
        frame.start_bound.clone(),
        frame.end_bound.clone(),
    );
    Transformed::yes(Expr::WindowFunction(window))
}
