//! Just enough HTML reading to fill in the provider's pages: forms, inputs, links, title, text.
//!
//! The pages come from one known server (oidc-provider's development views and device-flow
//! pages), so this is a tag scanner, not a parser for arbitrary HTML.

/// One `<form>` with its `<input>` fields, in document order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Form {
    pub(crate) id: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) method: String,
    /// `(name, value, type)` of each named input.
    pub(crate) inputs: Vec<(String, String, String)>,
}

impl Form {
    pub(crate) fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|(n, _, _)| n == name)
    }

    pub(crate) fn value_of(&self, name: &str) -> Option<&str> {
        self.inputs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v.as_str())
    }

    /// The fields as the browser would submit them, with `overrides` replacing or adding
    /// values.
    pub(crate) fn fields(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self
            .inputs
            .iter()
            .map(|(n, v, _)| {
                let value = overrides
                    .iter()
                    .find(|(k, _)| k == n)
                    .map_or_else(|| v.clone(), |(_, o)| (*o).to_owned());
                (n.clone(), value)
            })
            .collect();
        for (k, v) in overrides {
            if !self.has_input(k) {
                fields.push(((*k).to_owned(), (*v).to_owned()));
            }
        }
        fields
    }
}

/// What the scanner found in a page.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    pub(crate) title: Option<String>,
    pub(crate) forms: Vec<Form>,
    pub(crate) links: Vec<String>,
    /// The visible text, whitespace collapsed.
    pub(crate) text: String,
}

impl Page {
    pub(crate) fn parse(html: &str) -> Self {
        let mut page = Self::default();
        let mut text = String::new();
        let mut current_form: Option<Form> = None;
        let mut rest = html;
        let mut in_title = false;
        let mut title = String::new();
        while let Some(start) = rest.find('<') {
            let before = &rest[..start];
            text.push_str(before);
            text.push(' ');
            if in_title {
                title.push_str(before);
            }
            rest = &rest[start..];
            let Some((tag, after)) = read_tag(rest) else {
                break;
            };
            rest = after;
            match tag.name.as_str() {
                "style" | "script" => {
                    let close = format!("</{}", tag.name);
                    let end = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
                    rest = &rest[end..];
                }
                "title" => in_title = true,
                "/title" => in_title = false,
                "form" => {
                    if let Some(form) = current_form.take() {
                        page.forms.push(form);
                    }
                    current_form = Some(Form {
                        id: tag.attr("id"),
                        action: tag.attr("action"),
                        method: tag
                            .attr("method")
                            .unwrap_or_else(|| "get".to_owned())
                            .to_ascii_lowercase(),
                        inputs: Vec::new(),
                    });
                }
                "/form" => {
                    if let Some(form) = current_form.take() {
                        page.forms.push(form);
                    }
                }
                "input" => {
                    if let (Some(form), Some(name)) = (current_form.as_mut(), tag.attr("name")) {
                        form.inputs.push((
                            name,
                            tag.attr("value").unwrap_or_default(),
                            tag.attr("type")
                                .unwrap_or_else(|| "text".to_owned())
                                .to_ascii_lowercase(),
                        ));
                    }
                }
                "a" => {
                    if let Some(href) = tag.attr("href") {
                        page.links.push(href);
                    }
                }
                _ => {}
            }
        }
        text.push_str(rest);
        if let Some(form) = current_form.take() {
            page.forms.push(form);
        }
        page.text = collapse(&decode_entities(&text));
        let title = collapse(&decode_entities(&title));
        page.title = (!title.is_empty()).then_some(title);
        page
    }

    /// The first form that has an input called `name`.
    pub(crate) fn form_with_input(&self, name: &str) -> Option<&Form> {
        self.forms.iter().find(|f| f.has_input(name))
    }

    /// The first form with this `id`.
    pub(crate) fn form_with_id(&self, id: &str) -> Option<&Form> {
        self.forms.iter().find(|f| f.id.as_deref() == Some(id))
    }

    /// A short description for error messages: the title and the start of the text.
    pub(crate) fn summary(&self) -> String {
        let mut text: String = self.text.chars().take(400).collect();
        if self.text.chars().count() > 400 {
            text.push_str(" ...");
        }
        match &self.title {
            Some(title) => format!("page {title:?}: {text}"),
            None => format!("page: {text}"),
        }
    }
}

struct Tag {
    /// Lower-case name, with a leading `/` for closing tags.
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| decode_entities(v))
    }
}

/// Reads the tag at the start of `s` (which starts with `<`); returns it and what follows.
fn read_tag(s: &str) -> Option<(Tag, &str)> {
    if let Some(comment) = s.strip_prefix("<!--") {
        let end = comment.find("-->").map_or(comment.len(), |i| i + 3);
        return Some((
            Tag {
                name: "!--".to_owned(),
                attrs: Vec::new(),
            },
            &comment[end..],
        ));
    }
    let bytes = s.as_bytes();
    let mut i = 1;
    let name_start = i;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
        if bytes[i] == b'/' && i > name_start {
            break;
        }
        i += 1;
    }
    let name = s[name_start..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return Some((Tag { name, attrs }, ""));
        }
        if bytes[i] == b'>' {
            return Some((Tag { name, attrs }, &s[i + 1..]));
        }
        let key_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let key = s[key_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let value_start = i + 1;
                let end = s[value_start..]
                    .bytes()
                    .position(|b| b == quote)
                    .map_or(s.len(), |p| value_start + p);
                value = s[value_start..end].to_owned();
                i = (end + 1).min(s.len());
            } else {
                let value_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = s[value_start..i].to_owned();
            }
        }
        if !key.is_empty() {
            attrs.push((key, value));
        } else {
            i += 1;
        }
    }
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_forms_inputs_links_and_title() {
        let page = Page::parse(
            r#"<!DOCTYPE html><html><head><title>Sign-in</title>
            <style>body { color: red; }</style></head><body>
            <form autocomplete="off" action="/interaction/a&amp;b" method="post">
              <input type="hidden" name="prompt" value="login"/>
              <input required type="text" name="login" placeholder="Enter any login" autofocus="on" value="">
              <input required type="password" name="password">
            </form>
            <form id="op.deviceInputForm" novalidate method="post" action="/device">
              <input type="hidden" name="xsrf" value="x1"/>
              <input
                type="text" name="user_code" autofocus autocomplete="off"></input>
            </form>
            <a href="/interaction/uid/abort">[ Cancel ]</a> Tom &amp; Jerry &#39;x&#x27;
            </body></html>"#,
        );
        assert_eq!(page.title.as_deref(), Some("Sign-in"));
        assert_eq!(page.forms.len(), 2);
        let login = page.form_with_input("login").unwrap();
        assert_eq!(login.action.as_deref(), Some("/interaction/a&b"));
        assert_eq!(login.method, "post");
        assert_eq!(login.value_of("prompt"), Some("login"));
        let device = page.form_with_id("op.deviceInputForm").unwrap();
        assert_eq!(device.value_of("xsrf"), Some("x1"));
        assert!(device.has_input("user_code"));
        assert_eq!(page.links, vec!["/interaction/uid/abort".to_owned()]);
        assert!(page.text.contains("Tom & Jerry 'x'"), "{}", page.text);
        assert!(!page.text.contains("color"), "{}", page.text);
        assert_eq!(
            device.fields(&[("user_code", "ABCD"), ("confirm", "yes")]),
            vec![
                ("xsrf".to_owned(), "x1".to_owned()),
                ("user_code".to_owned(), "ABCD".to_owned()),
                ("confirm".to_owned(), "yes".to_owned()),
            ]
        );
    }
}
