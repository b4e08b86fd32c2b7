//! `report.html`: one self-contained file (styles inline, plots inlined as `data:` PNGs, no
//! fetches of any kind), so it can be attached to a postmortem or opened from a mail.
//!
//! A short inline script records, once the page has loaded, how many images decoded, as
//! `data-images-loaded="N/M"` on `<body>`: the headless-Chromium test reads it from the DOM,
//! and a reader who sees a broken image can check it too.

use std::path::Path;

use anyhow::Context;
use base64::Engine;

use super::document::{url, Block, Document};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;\
max-width:1060px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.2em}\
h2{font-size:1.3em;margin-top:1.6em;border-bottom:1px solid #eee}\
h3{font-size:1.1em}\
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}\
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}\
td.pass{background:#e3f4e3;font-weight:bold}td.fail{background:#fbe0e0;font-weight:bold}\
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em}ul{padding-left:1.4em}";

const SCRIPT: &str = "window.addEventListener('load',function(){var i=document.images,n=0;\
for(var k=0;k<i.length;k++){if(i[k].complete&&i[k].naturalWidth>0)n++;}\
document.body.setAttribute('data-images-loaded',n+'/'+i.length);});";

/// Renders `doc`; figures are read from `base` (the report's folder) and inlined.
pub fn render(doc: &Document, base: &Path) -> anyhow::Result<String> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n\
         <h1>{}</h1>\n",
        esc(&doc.title),
        esc(&doc.title)
    );
    for b in &doc.blocks {
        match b {
            Block::Heading(level, t) => out.push_str(&format!("<h{level}>{}</h{level}>\n", esc(t))),
            Block::Para(t) => out.push_str(&format!("<p>{}</p>\n", esc(t))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", esc(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                header,
                rows,
                numeric,
            } => {
                out.push_str("<table>\n<tr>");
                for h in header {
                    out.push_str(&format!("<th>{}</th>", esc(h)));
                }
                out.push_str("</tr>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let class = match c.as_str() {
                            "PASS" => " class=\"pass\"",
                            "FAIL" => " class=\"fail\"",
                            _ if numeric.contains(&i) => " class=\"n\"",
                            _ => "",
                        };
                        out.push_str(&format!("<td{class}>{}</td>", esc(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            Block::Figure { png, alt, caption } => {
                let path = base.join(png);
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                out.push_str(&format!(
                    "<figure>\n<img src=\"data:image/png;base64,{data}\" alt=\"{}\">\n\
                     <figcaption>{}</figcaption>\n</figure>\n",
                    esc(alt),
                    esc(caption)
                ));
            }
            Block::Links(links) => {
                out.push_str("<ul>\n");
                for (text, dir) in links {
                    out.push_str(&format!(
                        "<li><a href=\"{}\">{}</a></li>\n",
                        esc(&url(&dir.join("report.html"))),
                        esc(text)
                    ));
                }
                out.push_str("</ul>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_pass_fail_are_marked() {
        let mut d = Document::new("a <b> & \"c\"");
        d.para("<script>alert('x')</script>");
        d.table(
            &["result", "n"],
            vec![
                vec!["PASS".into(), "3".into()],
                vec!["FAIL".into(), "4".into()],
            ],
            &[1],
        );
        let html = render(&d, Path::new(".")).unwrap();
        assert!(
            html.contains("<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1>"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("<td class=\"pass\">PASS</td><td class=\"n\">3</td>"));
        assert!(html.contains("<td class=\"fail\">FAIL</td>"));
        assert!(!html.contains("http"), "no fetches: {html}");
    }

    #[test]
    fn figures_are_inlined_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.png"), b"\x89PNG").unwrap();
        let mut d = Document::new("t");
        d.figure("p.png".into(), "alt", "cap");
        let html = render(&d, dir.path()).unwrap();
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{html}"
        );
        d.figure("missing.png".into(), "alt", "cap");
        assert!(render(&d, dir.path()).is_err());
    }
}
