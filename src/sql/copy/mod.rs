//! COPY ... FROM STDIN and COPY ... TO STDOUT: the statement's options, and
//! a load in progress.
//!
//! A COPY FROM is an INSERT whose rows arrive in CopyData messages: the
//! session starts it ([`CopyFrom::start`]), each message is split into
//! records ([`format::Decoder`]) whose fields are read by the columns' input
//! functions ([`input`]) into Arrow batches, and each batch of
//! [`BATCH_ROWS`] rows is written into the statement's transaction as soon
//! as it is full (sent ahead to the shards as the transaction's buffer
//! fills). Memory is one batch and one record, whatever the size of the
//! load; the load is one transaction, so an error or a CopyFail leaves
//! nothing of it.
//!
//! A COPY TO runs its query as a SELECT; the front end writes the rows in
//! the COPY format ([`format::write_text`], [`format::write_csv`], and for
//! binary the DataRow bytes themselves).

pub mod format;
mod input;

pub use input::{float_input, numeric, numeric_text, utf8, ColumnInput};

use std::sync::Arc;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, Ident,
};

use super::ddl::ident_name;
use super::dml::{existing_table, quote};
use crate::catalog::{TableDef, Tables};
use crate::error::{Error, ErrorFields, InputError, Result};
use format::{Decoder, Field, Format, Layout};

/// How much of a bad value or line an error's CONTEXT quotes.
const CONTEXT_CHARS: usize = 64;

/// Rows per batch written into the transaction.
const BATCH_ROWS: usize = 8192;
/// A batch is written before this many bytes of records are in it.
const BATCH_BYTES: usize = 8 << 20;

/// A COPY statement's options, checked as PostgreSQL checks them.
pub struct CopyOptions {
    pub layout: Layout,
    /// FORCE_QUOTE: the columns quoted whatever their value (COPY TO, CSV).
    force_quote: Vec<Ident>,
    /// FORCE_NOT_NULL / FORCE_NULL (COPY FROM, CSV).
    force_not_null: Vec<Ident>,
    force_null: Vec<Ident>,
}

impl CopyOptions {
    pub fn new(
        options: &[CopyOption],
        legacy: &[CopyLegacyOption],
        to: bool,
    ) -> Result<CopyOptions> {
        let syntax = |what: &str| Error::input(InputError::Syntax, what.to_string());
        let mut format = Format::Text;
        let (mut delimiter, mut null, mut quote, mut escape) = (None, None, None, None);
        let mut header = false;
        let (mut force_quote, mut force_not_null, mut force_null) = (vec![], vec![], vec![]);
        for option in options {
            match option {
                CopyOption::Format(name) => {
                    format = match name.value.to_ascii_lowercase().as_str() {
                        "text" => Format::Text,
                        "csv" => Format::Csv,
                        "binary" => Format::Binary,
                        other => {
                            return Err(Error::input(
                                InputError::InvalidParameterValue,
                                format!("COPY format \"{other}\" not recognized"),
                            ))
                        }
                    }
                }
                // FREEZE is a hint for the bulk load of a new table: every
                // row a COPY writes is visible at its commit as any other.
                CopyOption::Freeze(_) => {}
                CopyOption::Delimiter(c) => delimiter = Some(*c),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => header = *h,
                CopyOption::Quote(c) => quote = Some(*c),
                CopyOption::Escape(c) => escape = Some(*c),
                CopyOption::ForceQuote(cols) => force_quote = cols.clone(),
                CopyOption::ForceNotNull(cols) => force_not_null = cols.clone(),
                CopyOption::ForceNull(cols) => force_null = cols.clone(),
                CopyOption::Encoding(name) => check_encoding(name)?,
            }
        }
        for option in legacy {
            match option {
                CopyLegacyOption::Binary => format = Format::Binary,
                CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                CopyLegacyOption::Null(s) => null = Some(s.clone()),
                CopyLegacyOption::Header => header = true,
                CopyLegacyOption::Csv(csv) => {
                    format = Format::Csv;
                    for option in csv {
                        match option {
                            CopyLegacyCsvOption::Header => header = true,
                            CopyLegacyCsvOption::Quote(c) => quote = Some(*c),
                            CopyLegacyCsvOption::Escape(c) => escape = Some(*c),
                            CopyLegacyCsvOption::ForceQuote(cols) => force_quote = cols.clone(),
                            CopyLegacyCsvOption::ForceNotNull(cols) => {
                                force_not_null = cols.clone()
                            }
                        }
                    }
                }
                other => return Err(Error::unsupported(format!("COPY option {other}"))),
            }
        }
        let csv = format == Format::Csv;
        if format == Format::Binary && (delimiter.is_some() || null.is_some() || header) {
            return Err(syntax(
                "cannot specify DELIMITER, NULL or HEADER in BINARY mode",
            ));
        }
        if !csv && (quote.is_some() || escape.is_some()) {
            return Err(Error::unsupported(
                "COPY QUOTE and ESCAPE available only in CSV mode",
            ));
        }
        let forces_from = !(force_not_null.is_empty() && force_null.is_empty());
        if !csv && (forces_from || !force_quote.is_empty()) {
            return Err(Error::unsupported(
                "COPY FORCE options available only in CSV mode",
            ));
        }
        if (to && forces_from) || (!to && !force_quote.is_empty()) {
            return Err(Error::input(
                InputError::Unsupported,
                "COPY FORCE_QUOTE only with COPY TO, FORCE_NOT_NULL and FORCE_NULL only with COPY FROM",
            ));
        }
        let one_byte = |c: Option<char>, default: u8, what: &str| -> Result<u8> {
            match c {
                None => Ok(default),
                Some(c) if c.is_ascii() => Ok(c as u8),
                Some(_) => Err(Error::input(
                    InputError::Unsupported,
                    format!("COPY {what} must be a single one-byte character"),
                )),
            }
        };
        let delimiter = one_byte(delimiter, if csv { b',' } else { b'\t' }, "delimiter")?;
        let quote = one_byte(quote, b'"', "quote")?;
        let escape = one_byte(escape, quote, "escape")?;
        let null = null.unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        if matches!(delimiter, b'\n' | b'\r') || null.contains(['\n', '\r']) {
            return Err(Error::input(
                InputError::InvalidParameterValue,
                "COPY delimiter and null string cannot contain newline or carriage return",
            ));
        }
        if !csv && (delimiter == b'\\' || delimiter.is_ascii_alphanumeric() || delimiter == b'.') {
            return Err(Error::input(
                InputError::InvalidParameterValue,
                format!("COPY delimiter cannot be \"{}\"", delimiter as char),
            ));
        }
        if csv && (delimiter == quote || null.as_bytes().contains(&delimiter)) {
            return Err(Error::input(
                InputError::InvalidParameterValue,
                "COPY delimiter must differ from the quote and not appear in the null string",
            ));
        }
        Ok(CopyOptions {
            layout: Layout {
                format,
                delimiter,
                null,
                header,
                quote,
                escape,
            },
            force_quote,
            force_not_null,
            force_null,
        })
    }

    /// Which of `columns` FORCE_QUOTE names (42703 for a name that is not
    /// among them).
    pub fn force_quote(&self, columns: &[String]) -> Result<Vec<bool>> {
        flags(&self.force_quote, columns, "FORCE_QUOTE")
    }
}

/// `sql` with the boolean values of a COPY's options written `ON`, `OFF`,
/// `1` or `0` (`WITH (FREEZE ON)`, as pgbench sends it) spelled `TRUE` /
/// `FALSE`, the only spellings sqlparser reads there; None when `sql` is
/// no COPY or has none.
pub fn spell_boolean_options(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let mut tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let words: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i], Token::Whitespace(_)))
        .collect();
    let keyword = |tokens: &[Token], i: usize| match &tokens[i] {
        Token::Word(w) => Some(w.keyword),
        _ => None,
    };
    if keyword(&tokens, *words.first()?) != Some(Keyword::COPY) {
        return None;
    }
    let mut changed = false;
    for pair in words.windows(2) {
        if !matches!(
            keyword(&tokens, pair[0]),
            Some(Keyword::FREEZE | Keyword::HEADER)
        ) {
            continue;
        }
        let value = match &tokens[pair[1]] {
            Token::Word(w) if w.value.eq_ignore_ascii_case("on") => "TRUE",
            Token::Word(w) if w.value.eq_ignore_ascii_case("off") => "FALSE",
            Token::Number(n, _) if n == "1" => "TRUE",
            Token::Number(n, _) if n == "0" => "FALSE",
            _ => continue,
        };
        tokens[pair[1]] = Token::make_keyword(value);
        changed = true;
    }
    changed.then(|| tokens.iter().map(ToString::to_string).collect())
}

/// The server speaks UTF-8 only.
fn check_encoding(name: &str) -> Result<()> {
    let normalized = name.to_ascii_lowercase().replace(['-', '_'], "");
    if normalized == "utf8" || normalized == "unicode" {
        return Ok(());
    }
    Err(Error::unsupported(format!(
        "COPY ENCODING '{name}': the server reads and writes UTF8 only"
    )))
}

fn flags(named: &[Ident], columns: &[String], option: &str) -> Result<Vec<bool>> {
    let mut flags = vec![false; columns.len()];
    for ident in named {
        let name = ident_name(ident);
        let at = columns.iter().position(|c| *c == name).ok_or_else(|| {
            Error::input(
                InputError::UndefinedColumn,
                format!("{option} column \"{name}\" not referenced by COPY"),
            )
        })?;
        flags[at] = true;
    }
    Ok(flags)
}

/// The query a `COPY table [(columns)] TO` reads: its columns in order.
pub fn table_query(catalog: &dyn Tables, source: &CopySource) -> Result<Option<String>> {
    let CopySource::Table {
        table_name,
        columns,
    } = source
    else {
        return Ok(None);
    };
    let (def, table) = existing_table(catalog, table_name)?;
    let columns = target_columns(&def, columns)?;
    let list: Vec<String> = columns
        .iter()
        .map(|&i| quote(&def.columns[i].name))
        .collect();
    Ok(Some(format!(
        "SELECT {} FROM {}",
        list.join(", "),
        quote(&table)
    )))
}

/// The stored-column index of each column a COPY names (all visible ones,
/// in order, when it names none); 42703 / 42701 as PostgreSQL.
fn target_columns(def: &TableDef, names: &[Ident]) -> Result<Vec<usize>> {
    if names.is_empty() {
        return Ok((0..def.visible_columns()).collect());
    }
    let mut columns = Vec::with_capacity(names.len());
    for ident in names {
        let name = ident_name(ident);
        let at = def
            .column_index(&name)
            .filter(|&i| i < def.visible_columns())
            .ok_or_else(|| {
                Error::input(
                    InputError::UndefinedColumn,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        def.name
                    ),
                )
            })?;
        if columns.contains(&at) {
            return Err(Error::input(
                InputError::Syntax,
                format!("column \"{name}\" specified more than once"),
            ));
        }
        columns.push(at);
    }
    Ok(columns)
}

/// A COPY FROM STDIN in progress (see the module docs).
pub struct CopyFrom {
    pub table: Arc<TableDef>,
    /// The stored column each field of a record goes to, in record order.
    pub targets: Vec<usize>,
    /// The load runs in a transaction of its own, committed at CopyDone.
    pub autocommit: bool,
    /// Rows read so far (written or in the current batch).
    pub rows: u64,
    decoder: Decoder,
    format: Format,
    null: Vec<u8>,
    inputs: Vec<ColumnInput>,
    force_not_null: Vec<bool>,
    force_null: Vec<bool>,
    batch_rows: usize,
    batch_bytes: usize,
    /// The field of the current record being read (for errors).
    reading: Option<usize>,
}

impl CopyFrom {
    /// Starts `COPY table [(columns)] FROM STDIN WITH options`; values
    /// are read in time zone `zone`, with `now`, `today`, ... read as of
    /// `began`, the transaction's start (microseconds since 1970, UTC), as
    /// in PostgreSQL.
    pub fn start(
        catalog: &dyn Tables,
        source: &CopySource,
        options: CopyOptions,
        (zone, began): (Tz, i64),
        autocommit: bool,
    ) -> Result<CopyFrom> {
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return Err(Error::input(
                InputError::Syntax,
                "COPY (query) FROM is not valid: a query can only be copied TO",
            ));
        };
        let (table, _) = existing_table(catalog, table_name)?;
        let targets = target_columns(&table, columns)?;
        let names: Vec<String> = targets
            .iter()
            .map(|&i| table.columns[i].name.clone())
            .collect();
        let inputs = targets
            .iter()
            .map(|&i| Ok(ColumnInput::new(&table.columns[i].sql_type, zone)?.at(began)))
            .collect::<Result<_>>()?;
        Ok(CopyFrom {
            force_not_null: flags(&options.force_not_null, &names, "FORCE_NOT_NULL")?,
            force_null: flags(&options.force_null, &names, "FORCE_NULL")?,
            format: options.layout.format,
            null: options.layout.null.clone().into_bytes(),
            decoder: Decoder::new(options.layout),
            table,
            targets,
            autocommit,
            rows: 0,
            inputs,
            batch_rows: 0,
            batch_bytes: 0,
            reading: None,
        })
    }

    pub fn binary(&self) -> bool {
        self.format == Format::Binary
    }

    /// Takes the next piece of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        self.decoder.feed(data);
    }

    /// Reads the records at hand until a batch is full, and returns it; or
    /// None once they ran out (with `last`, the stream ended: the rest of
    /// the batch is returned).
    pub fn next_batch(&mut self, last: bool) -> Result<Option<RecordBatch>> {
        while self.batch_rows < BATCH_ROWS && self.batch_bytes < BATCH_BYTES {
            let Some(record) = self.decoder.next_record(last)? else {
                break;
            };
            let mut fields = Vec::with_capacity(self.inputs.len());
            self.decoder
                .fields(&record, &mut fields)
                .and_then(|()| self.read_record(&fields))
                .map_err(|e| self.in_context(e, &record, &fields))?;
            self.batch_rows += 1;
            self.batch_bytes += record.len();
            self.rows += 1;
        }
        let full = self.batch_rows >= BATCH_ROWS || self.batch_bytes >= BATCH_BYTES;
        if self.batch_rows == 0 || !(full || last) {
            return Ok(None);
        }
        self.batch_rows = 0;
        self.batch_bytes = 0;
        let columns: Vec<ArrayRef> = self.inputs.iter_mut().map(ColumnInput::finish).collect();
        let schema = self.schema();
        Ok(Some(RecordBatch::try_new(schema, columns)?))
    }

    /// The batches' schema: the named columns as stored.
    pub fn schema(&self) -> SchemaRef {
        let row = self.table.row_schema();
        let fields: Vec<_> = self
            .targets
            .iter()
            .map(|&i| row.field(i).as_ref().clone().with_nullable(true))
            .collect();
        Arc::new(Schema::new(fields))
    }

    fn read_record(&mut self, fields: &[Field<'_>]) -> Result<()> {
        if fields.len() != self.inputs.len() {
            return Err(self.count_error(fields.len()));
        }
        for (i, field) in fields.iter().enumerate() {
            self.reading = Some(i);
            let mut value = field.value.as_deref();
            if self.format == Format::Csv {
                if value.is_none() && self.force_not_null[i] {
                    value = Some(&self.null);
                } else if field.quoted && self.force_null[i] && value == Some(&self.null[..]) {
                    value = None;
                }
            }
            let input = &mut self.inputs[i];
            match self.format {
                Format::Binary => input.push_binary(value)?,
                _ => input.push_text(value.map(input::utf8).transpose()?)?,
            }
        }
        self.reading = None;
        Ok(())
    }

    fn count_error(&self, found: usize) -> Error {
        let message = match self.format {
            Format::Binary => format!("row field count is {found}, expected {}", self.inputs.len()),
            _ if found > self.inputs.len() => "extra data after last expected column".into(),
            _ => format!(
                "missing data for column \"{}\"",
                self.table.columns[self.targets[found]].name
            ),
        };
        Error::input(InputError::BadCopyFormat, message)
    }

    /// An error reading a record, with where it happened as PostgreSQL's
    /// CONTEXT says it: `COPY t, line 3, column b: "x"`, or with the line
    /// itself for an error of the whole record (`COPY t, line 3: "1,2,3"`).
    fn in_context(&self, error: Error, record: &[u8], fields: &[Field<'_>]) -> Error {
        let Error::Input(kind, message) = error else {
            return error;
        };
        let (message, mut error_fields) = ErrorFields::split(&message);
        let line = self.decoder.line();
        let context = match self.reading {
            Some(i) => {
                let value = fields[i]
                    .value
                    .as_deref()
                    .map(|v| {
                        String::from_utf8_lossy(v)
                            .chars()
                            .take(CONTEXT_CHARS)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                format!(
                    "COPY {}, line {line}, column {}: \"{value}\"",
                    self.table.name, self.table.columns[self.targets[i]].name
                )
            }
            None if self.decoder.layout().format == Format::Binary => {
                format!("COPY {}, line {line}", self.table.name)
            }
            None => format!(
                "COPY {}, line {line}: \"{}\"",
                self.table.name,
                String::from_utf8_lossy(record)
                    .chars()
                    .take(CONTEXT_CHARS)
                    .collect::<String>()
            ),
        };
        error_fields.context = Some(context);
        Error::input_with(kind, message, &error_fields)
    }
}
