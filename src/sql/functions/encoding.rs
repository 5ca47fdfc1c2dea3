//! bytea's text forms: [`bytea_input`] (`byteain`: `\x` and hex, or the
//! escape format), which string literals for bytea are read with
//! (`rewrite::bytea_literal`), and `encode(bytea, format)` and
//! `decode(text, format)` as PostgreSQL's, for its three formats: `base64` (padded, a line break every 76 characters;
//! white space skipped when read), `hex` (white space between pairs
//! skipped when read) and `escape` (zero bytes and bytes with the high bit
//! set as `\ooo`, a backslash doubled). DataFusion's base64 had no padding
//! (`encode('ab', 'base64')` was `YWI`, PostgreSQL `YWI=`), refused a line
//! break when decoding, and had no `escape`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{input_error, like_arguments};
use crate::error::{Error, InputError, Result};

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// PostgreSQL breaks base64 text into lines of this many characters.
const BASE64_LINE: usize = 76;

pub fn encode() -> ScalarUDF {
    ScalarUDF::new_from_impl(Coding {
        decode: false,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

pub fn decode() -> ScalarUDF {
    ScalarUDF::new_from_impl(Coding {
        decode: true,
        signature: Signature::any(2, Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Coding {
    decode: bool,
    signature: Signature,
}

impl ScalarUDFImpl for Coding {
    fn name(&self) -> &str {
        if self.decode {
            "decode"
        } else {
            "encode"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(if self.decode {
            DataType::Binary
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let formats = cast(&arrays[1], &DataType::Utf8)?;
        let formats = formats.as_string::<i32>();
        let result: ArrayRef = if self.decode {
            let texts = cast(&arrays[0], &DataType::Utf8)?;
            let texts = texts.as_string::<i32>();
            let decoded = texts
                .iter()
                .zip(formats.iter())
                .map(|(text, format)| match (text, format) {
                    (Some(text), Some(format)) => decoded(text, format).map(Some),
                    _ => Ok(None),
                })
                .collect::<DFResult<Vec<Option<Vec<u8>>>>>()?;
            Arc::new(BinaryArray::from_iter(decoded))
        } else {
            let bytes = cast(&arrays[0], &DataType::Binary)?;
            let bytes = bytes.as_binary::<i32>();
            let encoded = bytes
                .iter()
                .zip(formats.iter())
                .map(|(bytes, format)| match (bytes, format) {
                    (Some(bytes), Some(format)) => encoded(bytes, format).map(Some),
                    _ => Ok(None),
                })
                .collect::<DFResult<StringArray>>()?;
            Arc::new(encoded)
        };
        like_arguments(&args.args, result)
    }
}

fn encoded(bytes: &[u8], format: &str) -> DFResult<String> {
    Ok(match format.to_ascii_lowercase().as_str() {
        "base64" => base64_encoded(bytes),
        "hex" => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        "escape" => bytes
            .iter()
            .map(|&b| match b {
                0 | 0x80.. => format!("\\{b:03o}"),
                b'\\' => "\\\\".to_string(),
                b => (b as char).to_string(),
            })
            .collect(),
        _ => return Err(unknown_format(format)),
    })
}

fn decoded(text: &str, format: &str) -> DFResult<Vec<u8>> {
    match format.to_ascii_lowercase().as_str() {
        "base64" => base64_decoded(text),
        "hex" => hex_decoded(text).map_err(Into::into),
        "escape" => escape_decoded(text).map_err(Into::into),
        _ => Err(unknown_format(format)),
    }
}

fn base64_encoded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4 + bytes.len() / 57);
    let mut line = 0;
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, &b)| w | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            match i <= chunk.len() {
                true => out.push(BASE64[(word >> (18 - 6 * i) & 63) as usize] as char),
                false => out.push('='),
            }
        }
        // After a full line, even the last (as PostgreSQL writes it).
        line += 4;
        if line == BASE64_LINE {
            out.push('\n');
            line = 0;
        }
    }
    out
}

fn base64_decoded(text: &str) -> DFResult<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut word, mut bits, mut padding) = (0u32, 0, 0);
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        if c == '=' {
            padding += 1;
            continue;
        }
        let value = BASE64.iter().position(|&b| b as char == c);
        let (Some(value), 0) = (value, padding) else {
            return Err(input_error(
                InputError::InvalidParameterValue,
                format!("invalid symbol \"{c}\" found while decoding base64 sequence"),
            ));
        };
        word = word << 6 | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((word >> bits) as u8);
        }
    }
    if bits >= 6 || padding > 2 {
        return Err(input_error(
            InputError::InvalidParameterValue,
            "invalid base64 end sequence",
        ));
    }
    Ok(out)
}

/// `byteain`: `\x` then hex digit pairs, or the escape format.
pub fn bytea_input(text: &str) -> Result<Vec<u8>> {
    match text.strip_prefix("\\x") {
        Some(hex) => hex_decoded(hex),
        None => escape_decoded(text),
    }
}

/// Hex digit pairs, white space between them skipped; a bad digit and an
/// odd number of digits are 22023, as in PostgreSQL.
fn hex_decoded(text: &str) -> Result<Vec<u8>> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if let Some(bad) = digits.iter().find(|c| !c.is_ascii_hexdigit()) {
        return Err(Error::input(
            InputError::InvalidParameterValue,
            format!("invalid hexadecimal digit: \"{bad}\""),
        ));
    }
    if digits.len() % 2 == 1 {
        return Err(Error::input(
            InputError::InvalidParameterValue,
            "invalid hexadecimal data: odd number of digits",
        ));
    }
    let value = |c: char| c.to_digit(16).unwrap_or(0) as u8;
    Ok(digits
        .chunks(2)
        .map(|pair| value(pair[0]) << 4 | value(pair[1]))
        .collect())
}

/// The escape format: `\\` a backslash, `\ooo` an octal byte, other
/// bytes as they are.
fn escape_decoded(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            out.push(bytes[at]);
            at += 1;
            continue;
        }
        let octal = |d: &u8, max: u8| (b'0'..=max).contains(d);
        match &bytes[at + 1..] {
            [b'\\', ..] => {
                out.push(b'\\');
                at += 2;
            }
            [a, b, c, ..] if octal(a, b'3') && octal(b, b'7') && octal(c, b'7') => {
                out.push((a - b'0') * 64 + (b - b'0') * 8 + (c - b'0'));
                at += 4;
            }
            _ => {
                return Err(Error::input(
                    InputError::InvalidText,
                    "invalid input syntax for type bytea",
                ))
            }
        }
    }
    Ok(out)
}

fn unknown_format(format: &str) -> DataFusionError {
    input_error(
        InputError::InvalidParameterValue,
        format!("unrecognized encoding: \"{format}\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_as_postgresql() {
        // PostgreSQL 15's answers.
        for (bytes, base64) in [
            (&b""[..], ""),
            (b"a", "YQ=="),
            (b"ab", "YWI="),
            (b"abc", "YWJj"),
        ] {
            assert_eq!(base64_encoded(bytes), base64);
            assert_eq!(base64_decoded(base64).unwrap(), bytes);
        }
        let long = base64_encoded(&[b'x'; 60]);
        assert_eq!(long.split('\n').map(str::len).collect::<Vec<_>>(), [76, 4]);
        assert_eq!(base64_encoded(&[b'x'; 57]).len(), 77);
        assert_eq!(base64_decoded(&long).unwrap(), [b'x'; 60]);
        assert!(base64_decoded("YW*=").is_err());
        assert_eq!(
            encoded(b"a\0b\\\xff", "escape").unwrap(),
            "a\\000b\\\\\\377"
        );
        assert_eq!(escape_decoded("a\\000b\\\\\\377").unwrap(), b"a\0b\\\xff");
        assert_eq!(hex_decoded("00 ff").unwrap(), [0, 255]);
        assert!(hex_decoded("0").is_err());
        assert!(hex_decoded("zz").is_err());
        assert_eq!(bytea_input("\\x0001ff").unwrap(), vec![0, 1, 255]);
        // As COPY reads a bytea field too.
        assert_eq!(bytea_input("\\x01ff 0a").unwrap(), vec![1, 255, 10]);
        assert_eq!(bytea_input("a\\\\b\\001").unwrap(), b"a\\b\x01".to_vec());
        assert_eq!(bytea_input("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(bytea_input("a\\000b\\\\").unwrap(), b"a\0b\\".to_vec());
        assert!(bytea_input("\\x0").is_err());
        assert!(bytea_input("\\xzz").is_err());
        assert!(bytea_input("\\9").is_err());
    }
}
