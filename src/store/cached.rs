//! Every statement through the connection's prepared-statement cache. The daemon runs the same few
//! dozen statements for every message; preparing one (tokenizing, parsing, planning the query)
//! costs more than running it, and `Connection::execute`/`query_row` prepare afresh each call.

use rusqlite::{Connection, Params, Row};

/// Statements prepared once per connection and kept (see `tune_connection` for the cache size).
pub(crate) trait CachedSql {
    /// Runs a statement that returns no rows; the number of rows changed.
    fn run<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// The first row of a query, mapped by `f` (`QueryReturnedNoRows` when there is none).
    fn row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn run<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_run_and_rows_come_back_through_the_cache() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)").unwrap();
        for (k, v) in [(1, "a"), (2, "b")] {
            assert_eq!(conn.run("INSERT INTO t (k, v) VALUES (?1, ?2)", rusqlite::params![k, v]).unwrap(), 1);
        }
        assert_eq!(conn.row("SELECT v FROM t WHERE k = ?1", [2], |r| r.get::<_, String>(0)).unwrap(), "b");
        assert!(matches!(
            conn.row("SELECT v FROM t WHERE k = ?1", [3], |r| r.get::<_, String>(0)),
            Err(rusqlite::Error::QueryReturnedNoRows)
        ));
        assert_eq!(conn.run("UPDATE t SET v = 'c'", []).unwrap(), 2);
    }
}
