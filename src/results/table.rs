//! The CSV files of a result folder, read by column name: a column added by a later version, or
//! one that is absent because its counter never moved, never breaks reading. Every error names
//! the file, the line and the column, and is bad input (exit code 2).

use std::path::{Path, PathBuf};

use csv::StringRecord;

use crate::error::Failure;

/// One CSV file, fully read.
pub struct Table {
    path: PathBuf,
    header: Vec<String>,
    /// Each record with the line it came from (the header is line 1).
    rows: Vec<(u64, StringRecord)>,
}

/// Bad input about `path`: `DIR/connections.csv: ...`.
pub fn bad(path: &Path, msg: impl std::fmt::Display) -> Failure {
    Failure::bad_input(format!("{}: {msg}", path.display()))
}

impl Table {
    /// Reads `dir/name`; a missing file is bad input that says what a result folder holds.
    pub fn read(dir: &Path, name: &str) -> Result<Table, Failure> {
        let (mut table, mut reader) = Table::open(dir, name)?;
        let mut rows = Vec::new();
        table.records(&mut reader, |line, rec| {
            rows.push((line, rec.clone()));
            Ok(())
        })?;
        table.rows = rows;
        Ok(table)
    }

    /// The header of `dir/name` and a reader of its rows, for [`Table::each`]: a file read
    /// row by row is never held whole (a million-row connections.csv is ~100 MB of text).
    pub fn open(dir: &Path, name: &str) -> Result<(Table, csv::Reader<std::fs::File>), Failure> {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(bad(
                &path,
                "missing; a folder written by `backlog-lab run` has connections.csv, \
                 timeseries.csv and summary.json",
            ));
        }
        let mut r = csv::Reader::from_path(&path).map_err(|e| bad(&path, e))?;
        let header = r
            .headers()
            .map_err(|e| bad(&path, e))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let table = Table {
            path,
            header,
            rows: Vec::new(),
        };
        Ok((table, r))
    }

    /// Calls `f` with each row `reader` (from [`Table::open`]) has left, in order.
    pub fn each(
        &self,
        reader: &mut csv::Reader<std::fs::File>,
        mut f: impl FnMut(Row<'_>) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        self.records(reader, |line, rec| {
            f(Row {
                table: self,
                line,
                rec,
            })
        })
    }

    fn records(
        &self,
        reader: &mut csv::Reader<std::fs::File>,
        mut f: impl FnMut(u64, &StringRecord) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let mut rec = StringRecord::new();
        loop {
            match reader.read_record(&mut rec) {
                Ok(false) => return Ok(()),
                Ok(true) => f(rec.position().map_or(0, |p| p.line()), &rec)?,
                Err(e) => {
                    return Err(match e.position() {
                        Some(p) => bad(&self.path, format!("line {}: {e}", p.line())),
                        None => bad(&self.path, e),
                    })
                }
            }
        }
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The index of a column the file cannot do without.
    pub fn require(&self, name: &str) -> Result<usize, Failure> {
        self.column(name).ok_or_else(|| {
            bad(
                &self.path,
                format!(
                    "line 1: no column `{name}` in the header; is this a backlog-lab result file?"
                ),
            )
        })
    }

    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(move |(line, rec)| Row {
            table: self,
            line: *line,
            rec,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One record, with typed access by column index.
pub struct Row<'a> {
    table: &'a Table,
    line: u64,
    rec: &'a StringRecord,
}

impl Row<'_> {
    fn cell(&self, col: usize) -> &str {
        self.rec.get(col).unwrap_or("").trim()
    }

    fn error(&self, col: usize, what: &str) -> Failure {
        bad(
            &self.table.path,
            format!(
                "line {}, column `{}`: `{}` is not {what}",
                self.line,
                self.table.header[col],
                self.cell(col)
            ),
        )
    }

    pub fn text(&self, col: usize) -> &str {
        self.cell(col)
    }

    /// A value that must be there.
    pub fn u64(&self, col: usize) -> Result<u64, Failure> {
        self.opt_u64(Some(col))?
            .ok_or_else(|| self.error(col, "a whole number (it is required)"))
    }

    /// Empty (or an absent column) is `None`.
    pub fn opt_u64(&self, col: Option<usize>) -> Result<Option<u64>, Failure> {
        match col.map(|c| (c, self.cell(c))) {
            None | Some((_, "")) => Ok(None),
            Some((c, s)) => s
                .parse()
                .map(Some)
                .map_err(|_| self.error(c, "a whole number")),
        }
    }

    pub fn opt_i64(&self, col: Option<usize>) -> Result<Option<i64>, Failure> {
        match col.map(|c| (c, self.cell(c))) {
            None | Some((_, "")) => Ok(None),
            Some((c, s)) => s.parse().map(Some).map_err(|_| self.error(c, "an integer")),
        }
    }

    /// An integer that must fit `T` (a port, an errno, a count); empty is `None`.
    pub fn opt_int<T: TryFrom<i64>>(
        &self,
        col: Option<usize>,
        what: &str,
    ) -> Result<Option<T>, Failure> {
        match (col, self.opt_i64(col)?) {
            (Some(c), Some(v)) => T::try_from(v).map(Some).map_err(|_| self.error(c, what)),
            _ => Ok(None),
        }
    }

    pub fn opt_f64(&self, col: usize) -> Result<Option<f64>, Failure> {
        match self.cell(col) {
            "" => Ok(None),
            s => s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| self.error(col, "a number")),
        }
    }

    /// Lets a caller report its own problem with a cell, in the same words.
    pub fn invalid(&self, col: usize, what: &str) -> Failure {
        self.error(col, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> (tempfile::TempDir, Result<Table, Failure>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.csv"), text).unwrap();
        let t = Table::read(dir.path(), "x.csv");
        (dir, t)
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let (_d, t) = table("a,b\n1,2\n3,x\n");
        let t = t.unwrap();
        let b = t.require("b").unwrap();
        let errs: Vec<String> = t
            .rows()
            .filter_map(|r| r.u64(b).err())
            .map(|e| e.message)
            .collect();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("x.csv: line 3, column `b`: `x`"),
            "{}",
            errs[0]
        );
        let missing = t.require("c").err().unwrap().message;
        assert!(missing.contains("no column `c`"), "{missing}");
    }

    #[test]
    fn ragged_rows_and_missing_files_are_bad_input() {
        let (_d, t) = table("a,b\n1,2\n3\n");
        let e = t.err().unwrap();
        assert!(e.message.contains("line 3"), "{}", e.message);
        let dir = tempfile::tempdir().unwrap();
        let e = Table::read(dir.path(), "nope.csv").err().unwrap();
        assert!(e.message.contains("nope.csv: missing"), "{}", e.message);
    }

    #[test]
    fn empty_cells_and_absent_columns_are_none() {
        let (_d, t) = table("a,b\n1,\n");
        let t = t.unwrap();
        let row = t.rows().next().unwrap();
        assert_eq!(row.opt_u64(t.column("b")).unwrap(), None);
        assert_eq!(row.opt_u64(t.column("zzz")).unwrap(), None);
        assert_eq!(row.opt_u64(t.column("a")).unwrap(), Some(1));
    }
}
