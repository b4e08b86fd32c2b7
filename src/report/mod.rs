//! The reports written into a result folder (`report.md`, `report.html`), from its files alone:
//! [`sections`] builds one [`document::Document`] (with the sentences of [`explain`]), which
//! [`markdown`] and [`html`] write out. What the terminal shows is [`crate::terminal`].

pub mod document;
pub mod explain;
pub mod html;
pub mod markdown;
pub mod plan;
pub mod sections;
