// Driver check with pgjdbc (extended query protocol, server-side prepared statements).
//
// Creates a table with a column of every supported type, inserts rows through
// PreparedStatement parameters, reads every value back and compares it with what was
// written (NULLs included), checks that a rolled-back transaction leaves nothing and a
// committed one persists, that a duplicate key raises SQLSTATE 23505, that a uuid
// primary key finds its row through a java.util.UUID parameter, and that COPY
// through CopyManager carries the table out and back in unchanged.
//
// json and jsonb columns: psycopg_check.py's JSON texts written as PGobjects of
// type jsonb / json, read back with getString as PostgreSQL writes them (jsonb
// canonical: keys sorted and unique, numbers as numeric prints them; json
// verbatim), JSON null apart from SQL NULL; ->> with a setString key, #>>, the ??
// escape for jsonb's ? operator, @> with a PGobject, jsonb_build_object with a
// setInt value; getObject of a json / jsonb column (a PGobject) and its type name
// in ResultSetMetaData (pgjdbc first looks the type up in pg_type), and json
// parameters the server types itself, setObject(i, text, Types.OTHER): as INSERT
// values (pgjdbc then sends Describe of the named statement, answered with NoData),
// in data @> ? and in ?::jsonb / ?::json.
//
// interval columns: psycopg_check.py's intervals (months included) written as
// org.postgresql.util.PGInterval through setObject, read back with getObject as equal
// PGIntervals and with getString as PostgreSQL's text; ORDER BY d by length (a month
// is 30 days), WHERE d = '30 days' finding '1 mon', WHERE d = ? and d > ? with a
// PGInterval.
//
// Array columns: java arrays sent with setArray(createArrayOf(...)) (text, typed
// int4[] / text[] / numeric[]), NULL elements and quoting included, read back with
// getArray().getArray() and getString, and found with = ANY(?).
//
// DatabaseMetaData, as tools and ORMs (Hibernate's schema validation, DBeaver,
// Flyway) read a schema: getTables, getColumns (types, sizes, nullability,
// ordinal positions), getPrimaryKeys and getIndexInfo (the key's columns in
// order, from pg_index.indkey through _pg_expandarray), getImportedKeys (none;
// it reads max_index_keys from pg_settings first) and getSchemas.
//
// Build and run (compat-tests/run does this):
//   javac -d OUT -cp /usr/share/java/postgresql.jar JdbcCheck.java
//   java -cp OUT:/usr/share/java/postgresql.jar JdbcCheck [HOST] [PORT]
// Prints one line `PASS jdbc ...` or `FAIL jdbc: ...`; exit status 0 on PASS.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.Objects;
import java.util.Properties;
import java.util.UUID;

public class JdbcCheck {
    static final String TABLE = "compat_jdbc";
    static final String[] NAMES = {
        "c_smallint", "c_integer", "c_bigint", "c_real", "c_double", "c_numeric", "c_boolean",
        "c_text", "c_varchar", "c_char", "c_date", "c_timestamp", "c_timestamptz", "c_bytea", "c_uuid",
    };
    static final String[] TYPES = {
        "smallint", "integer", "bigint", "real", "double precision", "numeric(12,3)", "boolean",
        "text", "varchar(10)", "char(4)", "date", "timestamp", "timestamptz", "bytea", "uuid",
    };
    static final int[] SQL_TYPES = {
        Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.REAL, Types.DOUBLE, Types.NUMERIC,
        Types.BOOLEAN, Types.VARCHAR, Types.VARCHAR, Types.CHAR, Types.DATE, Types.TIMESTAMP,
        Types.TIMESTAMP_WITH_TIMEZONE, Types.BINARY, Types.OTHER,
    };

    static byte[] allBytes() {
        byte[] b = new byte[256];
        for (int i = 0; i < 256; i++) b[i] = (byte) i;
        return b;
    }

    // Row values in NAMES order; char(4) values are written already blank-padded.
    static final Object[][] ROWS = {
        {(short) -12, 123456, 9007199254740993L, 3.25f, -0.000123, new BigDecimal("12345.678"), true,
         "hello, world", "short", "ab  ", LocalDate.of(1999, 12, 31),
         LocalDateTime.of(2000, 1, 1, 0, 0, 0, 1000),
         OffsetDateTime.of(2020, 2, 29, 12, 0, 0, 0, ZoneOffset.UTC), new byte[] {(byte) 0xde, (byte) 0xad, (byte) 0xbe, (byte) 0xef},
         UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")},
        new Object[NAMES.length],
        {Short.MIN_VALUE, Integer.MIN_VALUE, Long.MIN_VALUE, -0.15625f, 1e300, new BigDecimal("-999999999.999"), false,
         "", "", "    ", LocalDate.of(1, 1, 1), LocalDateTime.of(1970, 1, 1, 0, 0),
         OffsetDateTime.of(2024, 7, 1, 6, 59, 59, 500_000_000, ZoneOffset.UTC), new byte[0],
         UUID.fromString("00000000-0000-0000-0000-000000000000")},
        {Short.MAX_VALUE, Integer.MAX_VALUE, Long.MAX_VALUE, 16777216.0f, 0.1, new BigDecimal("0.001"), true,
         "unicodé ☃ 'quotes' \"double\" \\back", "ten chars!", "abcd", LocalDate.of(2024, 2, 29),
         LocalDateTime.of(2038, 1, 19, 3, 14, 8),
         OffsetDateTime.of(1969, 12, 31, 23, 59, 59, 0, ZoneOffset.ofHours(-7)), allBytes(),
         UUID.fromString("ffffffff-ffff-ffff-ffff-ffffffffffff")},
    };

    static class CheckFailed extends Exception {
        private static final long serialVersionUID = 1L;

        CheckFailed(String msg) { super(msg); }
    }

    static void check(boolean cond, String what) throws CheckFailed {
        if (!cond) throw new CheckFailed(what);
    }

    static String url;

    static Connection connect() throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", "postgres");
        props.setProperty("prepareThreshold", "1"); // named server-side statements from the first use
        props.setProperty("connectTimeout", "10");
        return DriverManager.getConnection(url, props);
    }

    static void bind(PreparedStatement ps, int idx, int col, Object v) throws SQLException {
        if (v == null) {
            ps.setNull(idx, SQL_TYPES[col]);
            return;
        }
        switch (col) {
            case 0: ps.setShort(idx, (Short) v); break;
            case 1: ps.setInt(idx, (Integer) v); break;
            case 2: ps.setLong(idx, (Long) v); break;
            case 3: ps.setFloat(idx, (Float) v); break;
            case 4: ps.setDouble(idx, (Double) v); break;
            case 5: ps.setBigDecimal(idx, (BigDecimal) v); break;
            case 6: ps.setBoolean(idx, (Boolean) v); break;
            case 13: ps.setBytes(idx, (byte[]) v); break;
            default: ps.setObject(idx, v); break; // strings, java.time values, UUID
        }
    }

    static Object read(ResultSet rs, int col) throws SQLException {
        int i = col + 1;
        Object v;
        switch (col) {
            case 0: v = rs.getShort(i); break;
            case 1: v = rs.getInt(i); break;
            case 2: v = rs.getLong(i); break;
            case 3: v = rs.getFloat(i); break;
            case 4: v = rs.getDouble(i); break;
            case 5: v = rs.getBigDecimal(i); break;
            case 6: v = rs.getBoolean(i); break;
            case 10: v = rs.getObject(i, LocalDate.class); break;
            case 11: v = rs.getObject(i, LocalDateTime.class); break;
            case 12: v = rs.getObject(i, OffsetDateTime.class); break;
            case 13: v = rs.getBytes(i); break;
            case 14: v = rs.getObject(i, UUID.class); break;
            default: v = rs.getString(i); break;
        }
        return rs.wasNull() ? null : v;
    }

    static boolean same(Object want, Object have) {
        if (want == null || have == null) return want == have;
        if (want instanceof byte[]) return have instanceof byte[] && Arrays.equals((byte[]) want, (byte[]) have);
        if (want instanceof OffsetDateTime) return have instanceof OffsetDateTime && ((OffsetDateTime) want).isEqual((OffsetDateTime) have);
        return want.equals(have);
    }

    static String show(Object v) {
        return v instanceof byte[] ? Arrays.toString((byte[]) v) : Objects.toString(v);
    }

    static long count(Connection c, String where) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM " + TABLE + " WHERE " + where)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    static String createTable(String name) {
        StringBuilder ddl = new StringBuilder("CREATE TABLE " + name + " (id integer PRIMARY KEY");
        for (int i = 0; i < NAMES.length; i++) ddl.append(", ").append(NAMES[i]).append(' ').append(TYPES[i]);
        return ddl.append(')').toString();
    }

    /** COPY through pgjdbc's CopyManager: the table out as CSV, into a copy of it, and out
     *  again unchanged; a malformed line fails the whole load with 22P02. */
    static void checkCopy(Connection c) throws Exception {
        String copyTable = TABLE + "_copy";
        org.postgresql.copy.CopyManager copy = c.unwrap(org.postgresql.PGConnection.class).getCopyAPI();
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + copyTable);
            st.execute(createTable(copyTable));
        }
        java.io.StringWriter out = new java.io.StringWriter();
        long rows = copy.copyOut("COPY (SELECT * FROM " + TABLE + " ORDER BY id) TO STDOUT (FORMAT csv)", out);
        check(rows == ROWS.length + 1, "COPY TO reported " + rows + " rows");
        long in = copy.copyIn("COPY " + copyTable + " FROM STDIN (FORMAT csv)", new java.io.StringReader(out.toString()));
        check(in == rows, "COPY FROM reported " + in + " rows, COPY TO " + rows);
        java.io.StringWriter back = new java.io.StringWriter();
        copy.copyOut("COPY (SELECT * FROM " + copyTable + " ORDER BY id) TO STDOUT (FORMAT csv)", back);
        check(back.toString().equals(out.toString()), "COPY round trip changed the rows:\n" + out + "---\n" + back);
        try {
            copy.copyIn("COPY " + copyTable + " (id) FROM STDIN", new java.io.StringReader("500\nnope\n"));
            throw new CheckFailed("COPY of a malformed line succeeded");
        } catch (SQLException e) {
            check("22P02".equals(e.getSQLState()), "malformed COPY line gave SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
        }
        try (Statement st = c.createStatement()) {
            try (ResultSet rs = st.executeQuery("SELECT count(*) FROM " + copyTable)) {
                rs.next();
                check(rs.getLong(1) == rows, "a failed COPY left rows behind: " + rs.getLong(1));
            }
            st.execute("DROP TABLE " + copyTable);
        }
    }

    /** A uuid primary key: rows written and found by setObject(java.util.UUID), the key
     *  read back by plain getObject as a UUID; twice (the second execution of a named
     *  statement may use binary results). */
    static void checkUuidKey(Connection c) throws Exception {
        String table = TABLE + "_uuid";
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + table);
            st.execute("CREATE TABLE " + table + " (id uuid PRIMARY KEY, v text)");
        }
        UUID[] keys = {UUID.fromString("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), UUID.fromString("f47ac10b-58cc-4372-a567-0e02b2c3d479")};
        String[] vs = {"one", "two"};
        try (PreparedStatement ins = c.prepareStatement("INSERT INTO " + table + " (id, v) VALUES (?, ?)")) {
            for (int k = 0; k < keys.length; k++) {
                ins.setObject(1, keys[k]);
                ins.setString(2, vs[k]);
                ins.executeUpdate();
            }
        }
        try (PreparedStatement sel = c.prepareStatement("SELECT id, v FROM " + table + " WHERE id = ?")) {
            for (int pass = 0; pass < 2; pass++) {
                for (int k = 0; k < keys.length; k++) {
                    sel.setObject(1, keys[k]);
                    try (ResultSet rs = sel.executeQuery()) {
                        check(rs.next(), "WHERE id = ? with " + keys[k] + " found no row");
                        Object id = rs.getObject(1);
                        check(keys[k].equals(id) && vs[k].equals(rs.getString(2)),
                              "WHERE id = ? with " + keys[k] + " gave " + id + " (" + (id == null ? null : id.getClass().getName()) + "), " + rs.getString(2));
                        check(!rs.next(), "WHERE id = ? with " + keys[k] + " returned two rows");
                    }
                }
            }
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE " + table);
        }
    }

    // psycopg_check.py's JSON_TEXTS: {id, the text written, the text jsonb gives back}.
    static final String[][] JSON_TEXTS = {
        {"10", "{\"n\": [1.50, 12345678901234567890.123, 1e3, -0, 0.1E1, 1.0e-3]}",
         "{\"n\": [1.50, 12345678901234567890.123, 1000, 0, 1, 0.0010]}"},
        {"11", "{\"k\": 1, \"bb\": {\"y\": 1, \"x\": 2}, \"é\": \"e\", \"b\": true, \"a\": [], \"k\": 2}",
         "{\"a\": [], \"b\": true, \"k\": 2, \"bb\": {\"x\": 2, \"y\": 1}, \"é\": \"e\"}"},
        {"12", " [ \"\\u00e9\\ud83d\\ude00\", \"\\\"\\\\\\n\\u001f\\/\" ,{ } ,[ ], null ] ",
         "[\"é😀\", \"\\\"\\\\\\n\\u001f/\", {}, [], null]"},
        {"13", "{\"name\":\"widget\",\"tags\":[\"a\",\"b\"],\"dims\":{\"w\":1.5,\"h\":[2,{\"deep\":[true,false,null]}]}}",
         "{\"dims\": {\"h\": [2, {\"deep\": [true, false, null]}], \"w\": 1.5}, \"name\": \"widget\", \"tags\": [\"a\", \"b\"]}"},
        {"14", "\"café 😀 ключ\"", "\"café 😀 ключ\""},
        {"15", "null", "null"},
        {"16", "{}", "{}"},
        {"17", "[ ]", "[]"},
        {"18", "{\n  \"x\" : [ 1 ,\t2 ],\r\n  \"s\": \"line\\nbreak\" }",
         "{\"s\": \"line\\nbreak\", \"x\": [1, 2]}"},
    };
    static final int JSON_SQL_NULL_ID = 19;
    static final String JSON_TABLE = TABLE + "_json";

    static org.postgresql.util.PGobject pgObject(String type, String value) throws SQLException {
        org.postgresql.util.PGobject o = new org.postgresql.util.PGobject();
        o.setType(type);
        o.setValue(value);
        return o;
    }

    /** The ids `sql` (one parameter, set by `bind`) selects, in order. */
    static java.util.List<Integer> ids(Connection c, String sql, java.util.function.Consumer<PreparedStatement> bind) throws SQLException {
        java.util.List<Integer> got = new java.util.ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            bind.accept(ps);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) got.add(rs.getInt(1));
            }
        }
        return got;
    }

    /** JSON_TABLE with the JSON texts and an SQL NULL. With `untyped`, even ids are
     *  written with setObject(i, text, Types.OTHER) (an untyped parameter: pgjdbc asks
     *  the server for its type with a Describe of the statement), the rest as PGobjects
     *  of type jsonb and json (typed parameters). */
    static void jsonTable(Connection c, boolean untyped) throws Exception {
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + JSON_TABLE);
            st.execute("CREATE TABLE " + JSON_TABLE + " (id integer PRIMARY KEY, data jsonb, doc json)");
        }
        try (PreparedStatement ins = c.prepareStatement("INSERT INTO " + JSON_TABLE + " (id, data, doc) VALUES (?, ?, ?)")) {
            for (String[] t : JSON_TEXTS) {
                int id = Integer.parseInt(t[0]);
                ins.setInt(1, id);
                if (untyped && id % 2 == 0) {
                    ins.setObject(2, t[1], Types.OTHER);
                    ins.setObject(3, t[1], Types.OTHER);
                } else {
                    ins.setObject(2, pgObject("jsonb", t[1]));
                    ins.setObject(3, pgObject("json", t[1]));
                }
                check(ins.executeUpdate() == 1, "insert of JSON text " + id + " did not report 1 row");
            }
            ins.setInt(1, JSON_SQL_NULL_ID);
            ins.setObject(2, pgObject("jsonb", null));
            ins.setObject(3, pgObject("json", null));
            check(ins.executeUpdate() == 1, "insert of SQL NULLs did not report 1 row");
        }
    }

    /** json and jsonb read back with getString (twice: the second execution of a
     *  named statement), JSON null and SQL NULL; ->> ?, #>>, ??, @> with a PGobject,
     *  jsonb_build_object. */
    static void checkJson(Connection c) throws Exception {
        jsonTable(c, false);
        try (PreparedStatement sel = c.prepareStatement("SELECT data, doc FROM " + JSON_TABLE + " WHERE id = ?")) {
            for (int pass = 0; pass < 2; pass++) {
                for (String[] t : JSON_TEXTS) {
                    sel.setInt(1, Integer.parseInt(t[0]));
                    try (ResultSet rs = sel.executeQuery()) {
                        check(rs.next(), "JSON text " + t[0] + " not found");
                        check(t[2].equals(rs.getString(1)) && t[1].equals(rs.getString(2)),
                              "JSON text " + t[0] + " " + t[1] + ": getString gave jsonb " + rs.getString(1)
                              + " and json " + rs.getString(2) + "; want jsonb " + t[2]);
                    }
                }
                sel.setInt(1, JSON_SQL_NULL_ID);
                try (ResultSet rs = sel.executeQuery()) {
                    check(rs.next() && rs.getString(1) == null && rs.wasNull() && rs.getString(2) == null,
                          "SQL NULL json/jsonb not read as null");
                }
            }
        }
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT id, data IS NULL, jsonb_typeof(data), data, doc FROM " + JSON_TABLE
                                            + " WHERE id IN (15, " + JSON_SQL_NULL_ID + ") ORDER BY id")) {
            check(rs.next() && rs.getInt(1) == 15 && !rs.getBoolean(2) && "null".equals(rs.getString(3))
                  && "null".equals(rs.getString(4)) && "null".equals(rs.getString(5)), "JSON null row");
            check(rs.next() && rs.getInt(1) == JSON_SQL_NULL_ID && rs.getBoolean(2) && rs.getString(3) == null
                  && rs.getString(4) == null, "SQL NULL row");
        }

        String ops = "SELECT data ->> ?, data -> 'dims' -> 'h', data #>> '{dims,h,1,deep,0}', data ?? 'tags', doc ->> 'name', "
            + "jsonb_build_object('id', id, 'n', ?, 'name', data ->> 'name') FROM " + JSON_TABLE + " WHERE id = ?";
        try (PreparedStatement ps = c.prepareStatement(ops)) {
            for (int pass = 0; pass < 2; pass++) {
                ps.setString(1, "name");
                ps.setInt(2, 7);
                ps.setInt(3, 13);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "->> ? on row 13 found no row");
                    String got = rs.getString(1) + " | " + rs.getString(2) + " | " + rs.getString(3) + " | "
                        + rs.getBoolean(4) + " | " + rs.getString(5) + " | " + rs.getString(6);
                    check(got.equals("widget | [2, {\"deep\": [true, false, null]}] | true | true | widget | "
                                     + "{\"n\": 7, \"id\": 13, \"name\": \"widget\"}"),
                          "->> ?, ->, #>>, ??, jsonb_build_object on row 13 gave " + got);
                }
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT data -> 'n', data #>> '{n,1}', data ->> ? FROM " + JSON_TABLE + " WHERE id = ?")) {
            ps.setString(1, "é");
            ps.setInt(2, 11);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next() && rs.getString(1) == null && rs.getString(3).equals("e"), "->> 'é' on row 11");
            }
            ps.setString(1, "n");
            ps.setInt(2, 10);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "row 10 not found");
                check("[1.50, 12345678901234567890.123, 1000, 0, 1, 0.0010]".equals(rs.getString(1))
                      && "12345678901234567890.123".equals(rs.getString(2)),
                      "-> 'n', #>> '{n,1}' on row 10 gave " + rs.getString(1) + ", " + rs.getString(2));
            }
        }
        String[][] probes = {{"{\"tags\": [\"b\"]}", "[13]"}, {"{\"n\": [1.5]}", "[10]"}, {"{\"k\": 2}", "[11]"},
                             {"{}", "[10, 11, 13, 16, 18]"}, {"[null]", "[12]"}};
        for (String[] probe : probes) {
            java.util.List<Integer> got = ids(c, "SELECT id FROM " + JSON_TABLE + " WHERE data @> ? ORDER BY id", ps -> {
                try { ps.setObject(1, pgObject("jsonb", probe[0])); } catch (SQLException e) { throw new RuntimeException(e); }
            });
            check(got.toString().equals(probe[1]), "WHERE data @> ? with PGobject jsonb " + probe[0] + " found " + got + ", want " + probe[1]);
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE " + JSON_TABLE);
        }
    }

    /** getObject of a json / jsonb column, a PGobject of the column's type,
     *  and the column type names in ResultSetMetaData (pgjdbc looks the type up in
     *  pg_type by its OID first). */
    static void checkJsonGetObject(Connection c) throws Exception {
        jsonTable(c, false);
        try (PreparedStatement sel = c.prepareStatement("SELECT data, doc FROM " + JSON_TABLE + " WHERE id = ?")) {
            for (String[] t : JSON_TEXTS) {
                sel.setInt(1, Integer.parseInt(t[0]));
                try (ResultSet rs = sel.executeQuery()) {
                    check(rs.next(), "JSON text " + t[0] + " not found");
                    Object data = rs.getObject(1), doc = rs.getObject(2);
                    check(data instanceof org.postgresql.util.PGobject && "jsonb".equals(((org.postgresql.util.PGobject) data).getType())
                          && t[2].equals(((org.postgresql.util.PGobject) data).getValue()),
                          "JSON text " + t[0] + ": getObject of jsonb gave " + show(data) + " (" + (data == null ? null : data.getClass().getName()) + ")");
                    check(doc instanceof org.postgresql.util.PGobject && "json".equals(((org.postgresql.util.PGobject) doc).getType())
                          && t[1].equals(((org.postgresql.util.PGobject) doc).getValue()),
                          "JSON text " + t[0] + ": getObject of json gave " + show(doc));
                }
            }
            sel.setInt(1, JSON_SQL_NULL_ID);
            try (ResultSet rs = sel.executeQuery()) {
                check(rs.next() && rs.getObject(1) == null && rs.getObject(2) == null, "SQL NULL json/jsonb: getObject not null");
                java.sql.ResultSetMetaData md = rs.getMetaData();
                check("jsonb".equals(md.getColumnTypeName(1)) && "json".equals(md.getColumnTypeName(2))
                      && md.getColumnType(1) == Types.OTHER && md.getColumnType(2) == Types.OTHER,
                      "json/jsonb column types: " + md.getColumnTypeName(1) + " " + md.getColumnTypeName(2) + " " + md.getColumnType(1));
            }
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE " + JSON_TABLE);
        }
    }

    /** json parameters the server types itself, setObject(i, text,
     *  Types.OTHER) (an untyped parameter), as INSERT values, in data @> ? and in
     *  ?::jsonb / ?::json. */
    static void checkJsonParameters(Connection c) throws Exception {
        jsonTable(c, true);
        try (PreparedStatement sel = c.prepareStatement("SELECT id, data, doc FROM " + JSON_TABLE + " WHERE id < ? ORDER BY id")) {
            sel.setInt(1, JSON_SQL_NULL_ID);
            try (ResultSet rs = sel.executeQuery()) {
                for (String[] t : JSON_TEXTS) {
                    check(rs.next() && rs.getInt(1) == Integer.parseInt(t[0]) && t[2].equals(rs.getString(2)) && t[1].equals(rs.getString(3)),
                          "JSON text " + t[0] + " written with setObject(Types.OTHER) read back as " + rs.getString(2) + ", " + rs.getString(3));
                }
            }
        }
        String[][] probes = {{"{\"tags\": [\"b\"]}", "[13]"}, {"{\"k\": 2}", "[11]"},
                             {"{}", "[10, 11, 13, 16, 18]"}, {"[null]", "[12]"}};
        for (String[] probe : probes) {
            java.util.List<Integer> got = ids(c, "SELECT id FROM " + JSON_TABLE + " WHERE data @> ? ORDER BY id", ps -> {
                try { ps.setObject(1, probe[0], Types.OTHER); } catch (SQLException e) { throw new RuntimeException(e); }
            });
            check(got.toString().equals(probe[1]), "WHERE data @> ? with setObject(" + probe[0] + ", Types.OTHER) found " + got + ", want " + probe[1]);
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT ?::jsonb, ?::json")) {
            for (String[] t : JSON_TEXTS) {
                ps.setObject(1, t[1], Types.OTHER);
                ps.setObject(2, t[1], Types.OTHER);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next() && t[2].equals(rs.getString(1)) && t[1].equals(rs.getString(2)),
                          "SELECT ?::jsonb, ?::json with " + t[1] + " gave " + rs.getString(1) + ", " + rs.getString(2));
                }
            }
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE " + JSON_TABLE);
        }
    }

    // psycopg_check.py's INTERVALS: {id, the text PostgreSQL writes}, and the values as PGIntervals.
    static final String[][] INTERVAL_TEXTS = {
        {"1", "1 day 02:03:04.000005"}, {"2", "-3 days +00:00:01"}, {"3", "00:00:00"}, {"4", "00:00:00.000001"},
        {"5", "40 days"}, {"6", "1 year 2 mons"}, {"7", "10000 days"}, {"8", "29 days"}, {"9", "1 mon"},
        {"10", "31 days"}, {"11", "720:00:00"}, {"12", "-10000 days +23:59:59.999999"}, {"13", "-00:00:00.000001"},
    };
    static final org.postgresql.util.PGInterval[] INTERVALS = {
        new org.postgresql.util.PGInterval(0, 0, 1, 2, 3, 4.000005),
        new org.postgresql.util.PGInterval(0, 0, -3, 0, 0, 1),
        new org.postgresql.util.PGInterval(0, 0, 0, 0, 0, 0),
        new org.postgresql.util.PGInterval(0, 0, 0, 0, 0, 0.000001),
        new org.postgresql.util.PGInterval(0, 0, 40, 0, 0, 0),
        new org.postgresql.util.PGInterval(1, 2, 0, 0, 0, 0),
        new org.postgresql.util.PGInterval(0, 0, 10000, 0, 0, 0),
        new org.postgresql.util.PGInterval(0, 0, 29, 0, 0, 0),
        new org.postgresql.util.PGInterval(0, 1, 0, 0, 0, 0),
        new org.postgresql.util.PGInterval(0, 0, 31, 0, 0, 0),
        new org.postgresql.util.PGInterval(0, 0, 0, 720, 0, 0),
        new org.postgresql.util.PGInterval(0, 0, -10000, 23, 59, 59.999999),
        new org.postgresql.util.PGInterval(0, 0, 0, 0, 0, -0.000001),
    };
    // ORDER BY d, id: by length, a month as 30 days ('1 mon' and '720:00:00' are both 30 days).
    static final String INTERVAL_ORDER = "[12, 2, 13, 3, 4, 1, 8, 9, 11, 10, 5, 6, 7]";

    /** interval: PGIntervals written with setObject, read back with getObject (equal
     *  PGIntervals) and getString (PostgreSQL's text), twice (the second execution of a
     *  named statement); ORDER BY d; WHERE d = '30 days', d = ? and d > ? with a PGInterval. */
    static void checkInterval(Connection c) throws Exception {
        String table = TABLE + "_interval";
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + table);
            st.execute("CREATE TABLE " + table + " (id integer PRIMARY KEY, d interval)");
        }
        try (PreparedStatement ins = c.prepareStatement("INSERT INTO " + table + " (id, d) VALUES (?, ?)")) {
            for (int k = 0; k < INTERVALS.length; k++) {
                ins.setInt(1, Integer.parseInt(INTERVAL_TEXTS[k][0]));
                ins.setObject(2, INTERVALS[k]);
                check(ins.executeUpdate() == 1, "insert of interval " + INTERVAL_TEXTS[k][1] + " did not report 1 row");
            }
        }
        try (PreparedStatement sel = c.prepareStatement("SELECT d, d FROM " + table + " WHERE id = ?")) {
            for (int pass = 0; pass < 2; pass++) {
                for (int k = 0; k < INTERVALS.length; k++) {
                    sel.setInt(1, Integer.parseInt(INTERVAL_TEXTS[k][0]));
                    try (ResultSet rs = sel.executeQuery()) {
                        check(rs.next(), "interval " + INTERVAL_TEXTS[k][1] + " not found");
                        Object d = rs.getObject(1);
                        String text = rs.getString(2);
                        check(INTERVALS[k].equals(d) && INTERVAL_TEXTS[k][1].equals(text),
                              "interval " + INTERVALS[k].getValue() + ": getObject gave " + (d instanceof org.postgresql.util.PGInterval
                              ? ((org.postgresql.util.PGInterval) d).getValue() : show(d)) + ", getString " + text + "; want " + INTERVAL_TEXTS[k][1]);
                        check("interval".equals(rs.getMetaData().getColumnTypeName(1)), "interval column type name " + rs.getMetaData().getColumnTypeName(1));
                    }
                }
            }
        }
        java.util.List<Integer> got = ids(c, "SELECT id FROM " + table + " ORDER BY d, id", ps -> { });
        check(got.toString().equals(INTERVAL_ORDER), "ORDER BY d, id gave " + got + ", want " + INTERVAL_ORDER);
        got = ids(c, "SELECT id FROM " + table + " WHERE d = '30 days' ORDER BY id", ps -> { });
        check(got.toString().equals("[9, 11]"), "WHERE d = '30 days' found " + got);
        String[][] probes = {{"=", "0 years 0 mons 30 days 0 hours 0 mins 0.0 secs", "[9, 11]"},
                             {">", "0 years 0 mons 30 days 0 hours 0 mins 0.0 secs", "[5, 6, 7, 10]"},
                             {"=", "1 years 2 mons 0 days 0 hours 0 mins 0.0 secs", "[6]"},
                             {"<", "0 years 0 mons 0 days 0 hours 0 mins 0.0 secs", "[2, 12, 13]"}};
        for (int pass = 0; pass < 2; pass++) {
            for (String[] probe : probes) {
                got = ids(c, "SELECT id FROM " + table + " WHERE d " + probe[0] + " ? ORDER BY id", ps -> {
                    try { ps.setObject(1, new org.postgresql.util.PGInterval(probe[1])); } catch (SQLException e) { throw new RuntimeException(e); }
                });
                check(got.toString().equals(probe[2]), "WHERE d " + probe[0] + " ? with PGInterval " + probe[1] + " found " + got + ", want " + probe[2]);
            }
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE " + table);
        }
    }

    static String run() throws Exception {
        String driver;
        String names = String.join(", ", NAMES);
        try (Connection c = connect(); Statement st = c.createStatement()) {
            driver = c.getMetaData().getDriverVersion();
            st.execute("DROP TABLE IF EXISTS " + TABLE);
            st.execute(createTable(TABLE));

            String marks = String.join(", ", java.util.Collections.nCopies(NAMES.length + 1, "?"));
            try (PreparedStatement ins = c.prepareStatement("INSERT INTO " + TABLE + " (id, " + names + ") VALUES (" + marks + ")")) {
                for (int r = 0; r < ROWS.length; r++) {
                    ins.setInt(1, r + 1);
                    for (int col = 0; col < NAMES.length; col++) bind(ins, col + 2, col, ROWS[r][col]);
                    check(ins.executeUpdate() == 1, "insert of row " + (r + 1) + " did not report 1 row");
                }
            }
            // Read each row twice: the second execution of a named statement may use binary results.
            try (PreparedStatement sel = c.prepareStatement("SELECT " + names + " FROM " + TABLE + " WHERE id = ?")) {
                for (int pass = 0; pass < 2; pass++) {
                    for (int r = 0; r < ROWS.length; r++) {
                        sel.setInt(1, r + 1);
                        try (ResultSet rs = sel.executeQuery()) {
                            check(rs.next(), "row " + (r + 1) + " not found");
                            for (int col = 0; col < NAMES.length; col++) {
                                Object have = read(rs, col);
                                check(same(ROWS[r][col], have), "row " + (r + 1) + " " + NAMES[col] + ": wrote "
                                      + show(ROWS[r][col]) + ", read " + show(have));
                            }
                            check(!rs.next(), "row " + (r + 1) + " returned twice");
                        }
                    }
                }
            }
        }

        // Rolled-back transaction leaves nothing; committed one persists.
        try (Connection c = connect(); Connection other = connect()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + TABLE + " (id, c_text) VALUES (?, ?)")) {
                ps.setInt(1, 100);
                ps.setString(2, "rolled back");
                ps.executeUpdate();
                check(count(c, "id = 100") == 1, "transaction does not see its own insert");
                check(count(other, "id = 100") == 0, "uncommitted insert visible to another session");
                c.rollback();
                check(count(c, "id = 100") == 0, "rolled-back insert still visible");
                ps.setInt(1, 101);
                ps.setString(2, "committed");
                ps.executeUpdate();
                c.commit();
            }
            check(count(other, "id = 101 AND c_text = 'committed'") == 1, "committed row not visible to another session");
        }
        try (Connection c = connect()) {
            check(count(c, "id = 100") == 0, "rolled-back row visible in a new session");
            check(count(c, "id = 101") == 1, "committed row missing in a new session");

            // Duplicate key: SQLSTATE 23505, and the session stays usable.
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + TABLE + " (id) VALUES (?)")) {
                ps.setInt(1, 1);
                ps.executeUpdate();
                throw new CheckFailed("duplicate key insert succeeded");
            } catch (SQLException e) {
                check("23505".equals(e.getSQLState()), "duplicate key gave SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
            }
            check(count(c, "true") == ROWS.length + 1, "row count wrong after duplicate key error");
            checkUuidKey(c);
            checkJson(c);
            checkJsonGetObject(c);
            checkJsonParameters(c);
            checkInterval(c);
            checkArrayColumns(c);
            checkCopy(c);
            checkMetadata(c);
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE " + TABLE);
            }
        }
        return driver;
    }

    /** The rows of `rs`, each the given columns' texts joined by '|', rows by ';'. */
    static String rows(ResultSet rs, String... columns) throws SQLException {
        StringBuilder out = new StringBuilder();
        try (rs) {
            while (rs.next()) {
                if (out.length() > 0) out.append(';');
                for (int i = 0; i < columns.length; i++) {
                    out.append(i == 0 ? "" : "|").append(rs.getString(columns[i]));
                }
            }
        }
        return out.toString();
    }

    static void checkArrayColumns(Connection c) throws Exception {
        String table = TABLE + "_arrays";
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS " + table);
            st.execute("CREATE TABLE " + table + " (id integer PRIMARY KEY, ints integer[], words text[], amounts numeric(10,2)[])");
        }
        Integer[] ints = {1, null, -2147483648};
        String[] words = {"a b", null, "", "{}", "q\"r", "x,y", "back\\slash"};
        BigDecimal[] amounts = {new BigDecimal("1.50"), new BigDecimal("-99999999.99")};
        try (PreparedStatement ins = c.prepareStatement("INSERT INTO " + table + " VALUES (?, ?, ?, ?)")) {
            ins.setInt(1, 1);
            ins.setArray(2, c.createArrayOf("integer", ints));
            ins.setArray(3, c.createArrayOf("text", words));
            ins.setArray(4, c.createArrayOf("numeric", amounts));
            ins.executeUpdate();
            ins.setInt(1, 2);
            ins.setArray(2, c.createArrayOf("integer", new Integer[0]));
            ins.setNull(3, java.sql.Types.ARRAY);
            ins.setNull(4, java.sql.Types.ARRAY);
            ins.executeUpdate();
        }
        try (Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT ints, words, amounts FROM " + table + " ORDER BY id")) {
            check(rs.next(), "array columns: no first row");
            Object[] got = (Object[]) rs.getArray(1).getArray();
            check(java.util.Arrays.equals(got, ints), "int[] read back as " + java.util.Arrays.toString(got));
            got = (Object[]) rs.getArray(2).getArray();
            check(java.util.Arrays.equals(got, words), "text[] read back as " + java.util.Arrays.toString(got));
            got = (Object[]) rs.getArray(3).getArray();
            check(java.util.Arrays.equals(got, amounts), "numeric[] read back as " + java.util.Arrays.toString(got));
            check("{1.50,-99999999.99}".equals(rs.getString(3)), "numeric[] getString gave " + rs.getString(3));
            check(rs.next(), "array columns: no second row");
            check(((Object[]) rs.getArray(1).getArray()).length == 0 && rs.getArray(2) == null,
                  "an empty and a NULL array read back as " + rs.getString(1) + ", " + rs.getString(2));
        }
        try (PreparedStatement sel = c.prepareStatement("SELECT id FROM " + table + " WHERE ? = ANY(words)")) {
            sel.setString(1, "x,y");
            try (ResultSet rs = sel.executeQuery()) {
                check(rs.next() && rs.getInt(1) == 1 && !rs.next(), "WHERE ? = ANY(words) did not find row 1 alone");
            }
        }
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE " + table);
        }
    }

    static void checkMetadata(Connection c) throws Exception {
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE IF EXISTS jdbc_meta");
            st.execute("CREATE TABLE jdbc_meta (region varchar(8), id bigint, note text, price numeric(10,2) NOT NULL,"
                       + " PRIMARY KEY (region, id))");
        }
        DatabaseMetaData m = c.getMetaData();
        String tables = rows(m.getTables(null, "public", "jdbc_meta", new String[] {"TABLE"}), "TABLE_NAME", "TABLE_TYPE");
        check(tables.equals("jdbc_meta|TABLE"), "getTables gave " + tables);
        String columns = rows(m.getColumns(null, "public", "jdbc_meta", null),
                              "COLUMN_NAME", "DATA_TYPE", "TYPE_NAME", "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "ORDINAL_POSITION");
        check(columns.equals("region|12|varchar|8|0|0|1;id|-5|int8|19|0|0|2;note|12|text|2147483647|0|1|3;price|2|numeric|10|2|0|4"),
              "getColumns gave " + columns);
        String keys = rows(m.getPrimaryKeys(null, "public", "jdbc_meta"), "COLUMN_NAME", "KEY_SEQ", "PK_NAME");
        check(keys.equals("region|1|jdbc_meta_pkey;id|2|jdbc_meta_pkey"), "getPrimaryKeys gave " + keys);
        String indexes = rows(m.getIndexInfo(null, "public", "jdbc_meta", false, false),
                              "INDEX_NAME", "NON_UNIQUE", "COLUMN_NAME", "ORDINAL_POSITION", "ASC_OR_DESC");
        check(indexes.equals("jdbc_meta_pkey|f|region|1|A;jdbc_meta_pkey|f|id|2|A"), "getIndexInfo gave " + indexes);
        String imported = rows(m.getImportedKeys(null, "public", "jdbc_meta"), "FKCOLUMN_NAME");
        check(imported.isEmpty(), "getImportedKeys gave " + imported);
        String schemas = rows(m.getSchemas(), "TABLE_SCHEM");
        check(schemas.equals("information_schema;pg_catalog;public"), "getSchemas gave " + schemas);
        try (Statement st = c.createStatement()) {
            st.execute("DROP TABLE jdbc_meta");
        }
    }

    public static void main(String[] args) {
        java.util.List<String> positional = new java.util.ArrayList<>();
        for (String arg : args) {
            positional.add(arg);
        }
        String host = positional.size() > 0 ? positional.get(0) : "127.0.0.1";
        String port = positional.size() > 1 ? positional.get(1) : "5432";
        url = "jdbc:postgresql://" + host + ":" + port + "/postgres";
        String driver = "";
        try {
            driver = run();
        } catch (CheckFailed e) {
            System.out.println("FAIL jdbc: " + e.getMessage());
            System.exit(1);
        } catch (SQLException e) {
            System.out.println("FAIL jdbc: SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            System.out.println("FAIL jdbc: " + e);
            System.exit(1);
        }
        System.out.println("PASS jdbc (" + driver + "): " + NAMES.length + " types x "
                           + ROWS.length + " rows, rollback/commit, 23505, uuid key, json/jsonb (" + JSON_TEXTS.length
                           + " texts, PGobject, ->>, ??, @>, jsonb_build_object), interval (" + INTERVALS.length
                           + " PGIntervals, getString, ORDER BY, = '30 days'), array columns, CopyManager in and out, DatabaseMetaData"
                           + " (tables, columns, primary keys, indexes, imported keys, schemas)");
    }
}
