//! The report as a small document model, built once ([`super::sections`]) and written twice:
//! as Markdown ([`super::markdown`]) and as self-contained HTML ([`super::html`]). Keeping the
//! content in one place means the two files can never say different things.

use std::path::{Path, PathBuf};

/// A relative path as a link target: forward slashes; `%`, spaces and parentheses encoded.
pub fn url(p: &Path) -> String {
    p.components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .replace('%', "%25")
                .replace(' ', "%20")
                .replace('(', "%28")
                .replace(')', "%29")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A report: a title and blocks in reading order. All text is plain (renderers escape it).
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
pub enum Block {
    /// Level 2 or 3 (the title is level 1).
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    /// A table; cells equal to `PASS` or `FAIL` are highlighted in HTML.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        /// Columns holding numbers (right-aligned).
        numeric: Vec<usize>,
    },
    /// A plot: `png` relative to the report's folder (inlined in HTML, linked in Markdown).
    Figure {
        png: PathBuf,
        alt: String,
        caption: String,
    },
    /// Links to other reports: (text, folder relative to this report's folder).
    Links(Vec<(String, PathBuf)>),
}

impl Document {
    pub fn new(title: impl Into<String>) -> Document {
        Document {
            title: title.into(),
            blocks: Vec::new(),
        }
    }
    pub fn h2(&mut self, t: impl Into<String>) {
        self.blocks.push(Block::Heading(2, t.into()));
    }
    pub fn h3(&mut self, t: impl Into<String>) {
        self.blocks.push(Block::Heading(3, t.into()));
    }
    pub fn para(&mut self, t: impl Into<String>) {
        self.blocks.push(Block::Para(t.into()));
    }
    pub fn list(&mut self, items: Vec<String>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }
    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>, numeric: &[usize]) {
        self.blocks.push(Block::Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
            numeric: numeric.to_vec(),
        });
    }
    pub fn figure(&mut self, png: PathBuf, alt: impl Into<String>, caption: impl Into<String>) {
        self.blocks.push(Block::Figure {
            png,
            alt: alt.into(),
            caption: caption.into(),
        });
    }
}
