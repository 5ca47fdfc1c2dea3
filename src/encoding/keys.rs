//! User keys and MVCC keys.
//!
//! A row's user key is `table_id (u32 BE) | hash16 (u16 BE) | pk`, where `pk`
//! is the memcomparable encoding of the primary-key columns in key order and
//! `hash16` is a stable hash of those bytes. Sorting user keys therefore
//! groups a table's rows by hash range, so one shard group (a contiguous
//! hash range) of one table is one contiguous key range.
//!
//! In storage every version of a row is stored under
//! `user_key | !commit_ts (u64 BE)`: the inverted timestamp makes the newest
//! version sort first, so a reader at snapshot `s` seeks to `user_key | !s`
//! and lands on the newest version it may see.
//!
//! The pk encoding is prefix-free for a fixed list of column types (fixed
//! widths, and strings escaped and terminated), so no user key of a table is
//! a prefix of another and `user_key | suffix` never collides.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Decimal256Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};

use crate::error::{Error, InputError, Result};

pub const TABLE_ID_LEN: usize = 4;
pub const HASH_LEN: usize = 2;
pub const TS_LEN: usize = 8;
/// Size of the hash space that shard groups split into contiguous ranges.
pub const HASH_SPACE: u32 = 1 << 16;

/// A stable 16-bit hash of encoded primary-key bytes. It decides which shard
/// group owns a row, so it is persisted in effect and must never change:
/// 32-bit FNV-1a, folded to 16 bits.
pub fn hash16(pk: &[u8]) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in pk {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    ((h >> 16) ^ (h & 0xffff)) as u16
}

/// The user key of a row from its encoded primary key.
pub fn row_key(table_id: u32, pk: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(TABLE_ID_LEN + HASH_LEN + pk.len());
    key.extend_from_slice(&table_id.to_be_bytes());
    key.extend_from_slice(&hash16(pk).to_be_bytes());
    key.extend_from_slice(pk);
    key
}

/// The hash16 of a user key.
pub fn key_hash(user_key: &[u8]) -> u16 {
    u16::from_be_bytes([user_key[TABLE_ID_LEN], user_key[TABLE_ID_LEN + 1]])
}

/// `[start, end)` of the user keys of `table_id` whose hash lies in
/// `[hash_start, hash_end)`; `hash_end` may be [`HASH_SPACE`].
pub fn hash_range_bounds(table_id: u32, hash_start: u32, hash_end: u32) -> (Vec<u8>, Vec<u8>) {
    let bound = |hash: u32| {
        let mut key = Vec::with_capacity(TABLE_ID_LEN + HASH_LEN);
        if hash >= HASH_SPACE {
            // The end of the table is the start of the next table id.
            key.extend_from_slice(&(u64::from(table_id) + 1).to_be_bytes()[4..]);
            if table_id == u32::MAX {
                key = vec![0xff; TABLE_ID_LEN + 1];
            }
        } else {
            key.extend_from_slice(&table_id.to_be_bytes());
            key.extend_from_slice(&(hash as u16).to_be_bytes());
        }
        key
    };
    (bound(hash_start), bound(hash_end))
}

/// `[start, end)` covering every user key of a table.
pub fn table_bounds(table_id: u32) -> (Vec<u8>, Vec<u8>) {
    hash_range_bounds(table_id, 0, HASH_SPACE)
}

/// The storage key of the version of `user_key` committed at `ts`.
pub fn mvcc_key(user_key: &[u8], ts: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(user_key.len() + TS_LEN);
    key.extend_from_slice(user_key);
    key.extend_from_slice(&(!ts).to_be_bytes());
    key
}

/// The smallest storage key above every version of `user_key`: the end of
/// a scan that reads just that row.
pub fn versions_end(user_key: &[u8]) -> Vec<u8> {
    let mut end = mvcc_key(user_key, 0);
    end.push(0);
    end
}

/// Splits a storage key into its user key and commit timestamp.
pub fn split_mvcc_key(key: &[u8]) -> Result<(&[u8], u64)> {
    if key.len() < TABLE_ID_LEN + HASH_LEN + TS_LEN {
        return Err(Error::Corrupt(format!("storage key too short: {key:?}")));
    }
    let (user, ts) = key.split_at(key.len() - TS_LEN);
    let mut raw = [0u8; TS_LEN];
    raw.copy_from_slice(ts);
    Ok((user, !u64::from_be_bytes(raw)))
}

/// Appends the memcomparable encoding of `array[row]` to `out`.
///
/// Integers are big-endian with the sign bit flipped; floats are flipped so
/// negative values sort first; decimals are their unscaled integers (the
/// scale is fixed per column); strings and bytes escape `0x00` as
/// `0x00 0xff` and end with `0x00 0x01`.
pub fn encode_key_value(out: &mut Vec<u8>, array: &dyn Array, row: usize) -> Result<()> {
    if array.is_null(row) {
        return Err(Error::input(
            InputError::NotNullViolation,
            "primary key columns cannot be null",
        ));
    }
    match array.data_type() {
        DataType::Boolean => out.push(u8::from(array.as_boolean().value(row))),
        DataType::Int16 => {
            let v = array.as_primitive::<Int16Type>().value(row);
            out.extend_from_slice(&((v as u16) ^ 0x8000).to_be_bytes());
        }
        DataType::Int32 => {
            let v = array.as_primitive::<Int32Type>().value(row);
            out.extend_from_slice(&((v as u32) ^ 0x8000_0000).to_be_bytes());
        }
        DataType::Date32 => {
            let v = array.as_primitive::<Date32Type>().value(row);
            out.extend_from_slice(&((v as u32) ^ 0x8000_0000).to_be_bytes());
        }
        DataType::Int64 => encode_i64(out, array.as_primitive::<Int64Type>().value(row)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => encode_i64(
            out,
            array.as_primitive::<TimestampMicrosecondType>().value(row),
        ),
        DataType::Time64(TimeUnit::Microsecond) => encode_i64(
            out,
            array.as_primitive::<Time64MicrosecondType>().value(row),
        ),
        DataType::Float32 => {
            let bits = array.as_primitive::<Float32Type>().value(row).to_bits();
            let flipped = if bits >> 31 == 1 {
                !bits
            } else {
                bits ^ 0x8000_0000
            };
            out.extend_from_slice(&flipped.to_be_bytes());
        }
        DataType::Float64 => {
            let bits = array.as_primitive::<Float64Type>().value(row).to_bits();
            let flipped = if bits >> 63 == 1 {
                !bits
            } else {
                bits ^ (1 << 63)
            };
            out.extend_from_slice(&flipped.to_be_bytes());
        }
        DataType::Decimal128(_, _) => {
            let v = array.as_primitive::<Decimal128Type>().value(row);
            out.extend_from_slice(&((v as u128) ^ (1 << 127)).to_be_bytes());
        }
        DataType::Decimal256(_, _) => {
            let mut bytes = array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_be_bytes();
            bytes[0] ^= 0x80;
            out.extend_from_slice(&bytes);
        }
        DataType::Utf8 => encode_bytes(out, array.as_string::<i32>().value(row).as_bytes()),
        DataType::Binary => encode_bytes(out, array.as_binary::<i32>().value(row)),
        // A numeric: the part of its sortable bytes without the display
        // scale, which orders as the values do and is prefix-free, so
        // `1.5` and `1.50` are one key, as they are one value to
        // PostgreSQL's unique index.
        DataType::LargeBinary => out.extend_from_slice(crate::numeric::value_part(
            array.as_binary::<i64>().value(row),
        )),
        // Fixed width: its bytes as they are keep the order and are prefix-free.
        DataType::FixedSizeBinary(_) => {
            out.extend_from_slice(array.as_fixed_size_binary().value(row))
        }
        other => {
            return Err(Error::unsupported(format!(
                "a primary key column of type {other}"
            )))
        }
    }
    Ok(())
}

fn encode_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for b in bytes {
        out.push(*b);
        if *b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        ArrayRef, Float64Array, Int16Array, Int32Array, Int64Array, StringArray,
    };
    use std::sync::Arc;

    fn encoded(array: ArrayRef) -> Vec<Vec<u8>> {
        (0..array.len())
            .map(|i| {
                let mut out = Vec::new();
                encode_key_value(&mut out, array.as_ref(), i).unwrap();
                out
            })
            .collect()
    }

    fn assert_sorted(keys: &[Vec<u8>]) {
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1], "{:?} !< {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn integers_sort_like_their_values() {
        assert_sorted(&encoded(Arc::new(Int64Array::from(vec![
            i64::MIN,
            -5,
            -1,
            0,
            1,
            7,
            i64::MAX,
        ]))));
        assert_sorted(&encoded(Arc::new(Int16Array::from(vec![-300, -1, 0, 2]))));
    }

    #[test]
    fn floats_sort_like_their_values() {
        assert_sorted(&encoded(Arc::new(Float64Array::from(vec![
            f64::NEG_INFINITY,
            -2.5,
            -0.1,
            0.0,
            0.1,
            3.0,
            f64::INFINITY,
        ]))));
    }

    #[test]
    fn strings_sort_and_are_prefix_free() {
        let keys = encoded(Arc::new(StringArray::from(vec![
            "", "a", "a\0", "a\0b", "ab", "b",
        ])));
        assert_sorted(&keys);
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{a:?} is a prefix of {b:?}");
                }
            }
        }
    }

    #[test]
    fn null_primary_key_is_rejected() {
        let array = Int32Array::from(vec![None, Some(1)]);
        let err = encode_key_value(&mut Vec::new(), &array, 0).unwrap_err();
        assert!(matches!(err, Error::Input(InputError::NotNullViolation, _)));
    }

    #[test]
    fn mvcc_keys_order_newest_first_and_round_trip() {
        let user = row_key(7, b"pk");
        let newer = mvcc_key(&user, 20);
        let older = mvcc_key(&user, 10);
        assert!(newer < older);
        assert_eq!(split_mvcc_key(&newer).unwrap(), (user.as_slice(), 20));
    }

    #[test]
    fn hash_range_bounds_cover_the_table() {
        let (start, end) = table_bounds(3);
        let key = row_key(3, b"anything");
        assert!(start.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice());
        let (_, next_start) = hash_range_bounds(3, 0, HASH_SPACE);
        assert!(row_key(4, b"").as_slice() >= next_start.as_slice());
        let h = u32::from(key_hash(&key));
        let (s, e) = hash_range_bounds(3, h, h + 1);
        assert!(s.as_slice() <= key.as_slice() && key.as_slice() < e.as_slice());
    }
}
