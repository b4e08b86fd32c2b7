//! `report.md`: the report as GitHub-flavoured Markdown, with the plots linked from `plots/`.

use super::document::{url, Block, Document};

/// Escapes text so Markdown shows it literally (tables also need `|` escaped, lines joined).
/// An `_` inside a word (`tcp_abort_on_overflow`) is literal in GitHub Markdown and stays as is,
/// so the raw file reads well too.
fn esc(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<&char>| j.is_some_and(|c| c.is_alphanumeric());
        let inner_underscore =
            c == '_' && i > 0 && word(chars.get(i - 1)) && word(chars.get(i + 1));
        let special = matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|')
            || (c == '#' && i == 0);
        if special && !inner_underscore {
            out.push('\\');
        }
        if c == '\n' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

pub fn render(doc: &Document) -> String {
    let mut out = format!("# {}\n", esc(&doc.title));
    for b in &doc.blocks {
        out.push('\n');
        match b {
            Block::Heading(level, t) => {
                out.push_str(&format!("{} {}\n", "#".repeat(*level as usize), esc(t)))
            }
            Block::Para(t) => out.push_str(&format!("{}\n", esc(t))),
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {}\n", esc(i)));
                }
            }
            Block::Table {
                header,
                rows,
                numeric,
            } => {
                let row = |cells: &[String]| {
                    format!(
                        "| {} |\n",
                        cells.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
                    )
                };
                out.push_str(&row(header));
                let rule: Vec<String> = (0..header.len())
                    .map(|i| if numeric.contains(&i) { "---:" } else { "---" }.to_string())
                    .collect();
                out.push_str(&format!("|{}|\n", rule.join("|")));
                for r in rows {
                    out.push_str(&row(r));
                }
            }
            Block::Figure { png, alt, caption } => {
                out.push_str(&format!(
                    "![{}]({})\n\n*{}*\n",
                    esc(alt),
                    url(png),
                    esc(caption)
                ));
            }
            Block::Links(links) => {
                for (text, dir) in links {
                    out.push_str(&format!(
                        "- [{}]({})\n",
                        esc(text),
                        url(&dir.join("report.md"))
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_text_are_escaped() {
        let mut d = Document::new("run <1>");
        d.para("a|b *c*");
        d.table(
            &["name", "n"],
            vec![vec!["x|y".into(), "1,234".into()]],
            &[1],
        );
        d.figure("plots/a b.png".into(), "alt", "_cap_tion_");
        let md = render(&d);
        assert!(md.starts_with("# run \\<1\\>\n"), "{md}");
        assert!(md.contains("a\\|b \\*c\\*"), "{md}");
        assert!(md.contains("| x\\|y | 1,234 |"), "{md}");
        assert!(md.contains("|---|---:|"), "{md}");
        assert!(md.contains("![alt](plots/a%20b.png)"), "{md}");
        assert!(md.contains("*\\_cap_tion\\_*"), "{md}");
    }
}
