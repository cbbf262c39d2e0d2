//! Class names from a labels file: one class a line, or a JSON list of strings.

use crate::error::{Error, Result};

/// The class names in `text`: a JSON list of strings, or one name a line (a trailing empty line
/// ignored). Empty names are refused: each class must be told apart.
pub fn parse(text: &str) -> Result<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let names: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| Error::Invalid(format!("labels: not a JSON list of strings ({e})")))?
    } else {
        text.trim_end_matches(['\n', '\r']).lines().map(|l| l.trim_end_matches('\r').trim().to_string()).collect()
    };
    if names.is_empty() {
        return Err(Error::Invalid("labels: no class names".into()));
    }
    if let Some(i) = names.iter().position(|n| n.is_empty()) {
        return Err(Error::Invalid(format!("labels: class {i} has no name (line {})", i + 1)));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_json_lists() {
        assert_eq!(parse("cat\ndog\r\n\n").unwrap(), ["cat", "dog"]);
        assert_eq!(parse(" [\"cat\", \"dog\"]").unwrap(), ["cat", "dog"]);
        assert!(parse("cat\n\ndog").unwrap_err().to_string().contains("class 1 has no name"));
        assert!(parse("[1, 2]").unwrap_err().to_string().contains("JSON list of strings"));
        assert!(parse("").is_err());
    }
}
