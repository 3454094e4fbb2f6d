//! The one ANSI painter. Whether colour is on is decided once, by [`super::Ui::new`] (`--color`, `NO_COLOR`, is
//! the stream a terminal); everything that paints (plan text, apply progress and report, warnings) takes a
//! [`Style`] built from that decision, so output reads the same without colour. A pure string function: renderers
//! in the engine may use it (see docs/architecture.md).

/// Paints text with SGR codes when enabled; returns it unchanged otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub const PLAIN: Style = Style { color: false };

    pub fn new(color: bool) -> Self {
        Style { color }
    }

    /// `s` wrapped in `ESC[<code>m ... ESC[0m` when colour is on (`code`: an SGR list such as `31;1`).
    pub fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_only_when_enabled() {
        assert_eq!(Style::new(true).paint("31;1", "x"), "\x1b[31;1mx\x1b[0m");
        assert_eq!(Style::PLAIN.paint("31;1", "x"), "x");
    }
}
