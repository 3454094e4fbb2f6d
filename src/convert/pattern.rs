//! DM's schema/table name patterns, and what can be proved about the names they match.
//!
//! DM reads a pattern in one of two ways:
//! - **wildcard** (block-allow lists, routes and binlog filters): a byte-wise glob where `?` is one byte, `[a-z]` /
//!   `[!a-z]` one byte of a class, and `*` (only allowed as the last character) any rest, including nothing. DM's
//!   matcher compares bytes; for patterns made of ASCII characters this is exact whatever the names contain.
//! - **`~regex`** (block-allow lists and routes only; a binlog filter takes `~` literally): a Go regular expression,
//!   unanchored unless it says `^`/`$`.
//!
//! Unless the task says `case-sensitive: true`, DM lower-cases both the pattern text and the names before matching
//! (and adds `(?i)` to regular expressions), so proofs are made over lower-case names.
//!
//! Everything here answers "proved" or "not proved": `false` never means the opposite holds.

use std::fmt;

/// How names are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// DM's default: pattern and name lower-cased, `(?i)` on regular expressions.
    Insensitive,
    /// `case-sensitive: true`.
    Sensitive,
}

/// A parsed pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    /// The text as written (shown to people, written to the output).
    pub text: String,
    /// The text DM actually matches with (lower-cased unless case-sensitive).
    pub norm: String,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Glob(Glob),
    Regex(RegexShape),
}

/// A set of bytes (one position of a wildcard pattern).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bytes([u64; 4]);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} members)", (0..=255u8).filter(|b| self.has(*b)).count())
    }
}

impl Bytes {
    const EMPTY: Bytes = Bytes([0; 4]);
    const ALL: Bytes = Bytes([u64::MAX; 4]);

    fn one(b: u8) -> Bytes {
        let mut s = Bytes::EMPTY;
        s.add(b);
        s
    }

    fn add(&mut self, b: u8) {
        self.0[(b / 64) as usize] |= 1 << (b % 64);
    }

    fn has(&self, b: u8) -> bool {
        self.0[(b / 64) as usize] & (1 << (b % 64)) != 0
    }

    fn ascii_only(&self) -> bool {
        self.0[2] == 0 && self.0[3] == 0
    }

    /// Remove what cannot occur in a name DM compares (upper-case ASCII when names are lower-cased).
    fn in_domain(mut self, case: Case) -> Bytes {
        if case == Case::Insensitive {
            for b in b'A'..=b'Z' {
                self.0[(b / 64) as usize] &= !(1 << (b % 64));
            }
        }
        self
    }

    fn subset(&self, other: &Bytes) -> bool {
        (0..4).all(|i| self.0[i] & !other.0[i] == 0)
    }

    fn disjoint(&self, other: &Bytes) -> bool {
        (0..4).all(|i| self.0[i] & other.0[i] == 0)
    }
}

/// A wildcard pattern: fixed positions, then optionally `*`.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    atoms: Vec<Bytes>,
    star: bool,
    /// Only ASCII characters in the pattern: DM's matcher is then a plain byte-wise glob.
    ascii: bool,
}

impl Glob {
    /// `*`: every name.
    pub(crate) fn is_everything(&self) -> bool {
        self.atoms.is_empty() && self.star
    }
}

/// One character position of a regular expression: a set of characters, as closed ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chars(Vec<(char, char)>);

impl Chars {
    fn one(c: char) -> Chars {
        Chars(vec![(c, c)])
    }

    /// The ASCII members that can occur in a compared name, as bytes; `None` when a non-ASCII member can occur
    /// (then no byte position can be proved to hold it). `lenient` ignores the long s `ſ` (U+017F), which Go's
    /// case-insensitive matching equates with `s` (see [`Strictness`]).
    fn ascii_members(&self, case: Case, lenient: bool) -> Option<Bytes> {
        let mut out = Bytes::EMPTY;
        for &(lo, hi) in &self.0 {
            let (lo, hi) = (lo as u32, hi as u32);
            for c in lo..=hi.min(0x7f) {
                out.add(c as u8);
            }
            if hi >= 0x80 {
                let from = lo.max(0x80);
                // Large non-ASCII ranges certainly hold characters a name can have.
                if hi - from > 64 {
                    return None;
                }
                for c in (from..=hi).filter_map(char::from_u32) {
                    if in_domain(c, case) && !(lenient && c == '\u{17f}') {
                        return None;
                    }
                }
            }
        }
        Some(out.in_domain(case))
    }

    /// The ASCII members, leaving out control characters (where Go's and this parser's classes differ, e.g. `\s`
    /// and vertical tab): used only where fewer members makes a proof harder, never easier.
    fn ascii_printable(&self) -> Bytes {
        let mut out = Bytes::EMPTY;
        for &(lo, hi) in &self.0 {
            for c in (lo as u32).max(0x20)..=(hi as u32).min(0x7e) {
                out.add(c as u8);
            }
        }
        out
    }

    fn subset(&self, other: &Chars, case: Case) -> bool {
        // Walk self's characters, jumping over runs `other` holds; give up (not proved) after many steps.
        let mut steps = 0u32;
        self.0.iter().all(|&(lo, hi)| {
            let mut c = lo as u32;
            while c <= hi as u32 {
                steps += 1;
                if steps > 4096 {
                    return false;
                }
                match other.0.iter().find(|&&(a, b)| (a as u32) <= c && c <= b as u32) {
                    Some(&(_, b)) => c = b as u32 + 1,
                    // Outside `other`: fine only if no compared name can hold it.
                    None if char::from_u32(c).is_some_and(|ch| in_domain(ch, case)) => return false,
                    None => c += 1,
                }
            }
            true
        })
    }

    fn disjoint(&self, other: &Chars, case: Case) -> bool {
        self.0.iter().all(|&(lo, hi)| {
            other.0.iter().all(|&(a, b)| {
                let (from, to) = ((lo as u32).max(a as u32), (hi as u32).min(b as u32));
                if from > to {
                    return true;
                }
                if to - from > 4096 {
                    return false;
                }
                (from..=to).filter_map(char::from_u32).all(|c| !in_domain(c, case))
            })
        })
    }
}

/// Whether a name as DM compares it can contain `c` (names are lower-cased unless case-sensitive).
fn in_domain(c: char, case: Case) -> bool {
    case == Case::Sensitive || {
        let mut lower = c.to_lowercase();
        lower.next() == Some(c) && lower.next().is_none()
    }
}

/// What is known of a regular expression's language.
#[derive(Debug, Clone)]
pub(crate) struct RegexShape {
    /// Starts with `^` (or `\A`): the prefix positions are the name's first characters; otherwise the prefix may
    /// be found anywhere in the name.
    anchored: bool,
    /// The fixed single-character positions after the anchor.
    prefix: Vec<Chars>,
    tail: Tail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing follows (or `.*` alone): every continuation matches.
    Open,
    /// `$` right after the prefix: exactly the prefix strings.
    Exact,
    /// Something else: the language is only known to start with the prefix (when anchored).
    Other,
}

impl RegexShape {
    fn unknown() -> RegexShape {
        RegexShape { anchored: false, prefix: Vec::new(), tail: Tail::Other }
    }

    /// Every name (`.*`, `^`, `^.*`, an empty expression).
    fn is_everything(&self) -> bool {
        self.prefix.is_empty() && self.tail == Tail::Open
    }
}

/// A pattern DM would refuse (the task check fails), with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid(pub String);

impl Pattern {
    /// Parse a block-allow-list or route pattern (`~` starts a regular expression).
    pub(crate) fn parse(text: &str, case: Case) -> Result<Pattern, Invalid> {
        Pattern::parse_as(text, case, true)
    }

    /// Parse a binlog filter pattern: always a wildcard (`~` is an ordinary character there).
    pub(crate) fn parse_filter(text: &str, case: Case) -> Result<Pattern, Invalid> {
        Pattern::parse_as(text, case, false)
    }

    fn parse_as(text: &str, case: Case, regex_allowed: bool) -> Result<Pattern, Invalid> {
        let norm = match case {
            Case::Insensitive => text.to_lowercase(),
            Case::Sensitive => text.to_owned(),
        };
        let kind = match norm.strip_prefix('~') {
            Some(re) if regex_allowed => Kind::Regex(regex_shape(re, case)),
            _ => Kind::Glob(parse_glob(&norm)?),
        };
        Ok(Pattern { text: text.to_owned(), norm, kind })
    }

    pub(crate) fn is_regex(&self) -> bool {
        matches!(self.kind, Kind::Regex(_))
    }

    /// Matches every name.
    pub(crate) fn is_everything(&self) -> bool {
        match &self.kind {
            Kind::Glob(g) => g.is_everything(),
            Kind::Regex(r) => r.is_everything(),
        }
    }

    /// Same names matched (same text as DM compares it).
    pub(crate) fn same(&self, other: &Pattern) -> bool {
        self.norm == other.norm && self.is_regex() == other.is_regex()
    }
}

/// How far a containment proof may go (see [`Pattern::subset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Holds for every name.
    Strict,
    /// Holds for every name that does not contain the long s `ſ` (U+017F): Go's case-insensitive regular expressions
    /// match it where they say `s`, DM's wildcard matcher does not. Used only where a wrong answer could change where
    /// a table is routed, never what is replicated.
    IgnoreLongS,
}

impl Pattern {
    /// Proved: every name `self` matches, `other` matches too.
    pub(crate) fn subset(&self, other: &Pattern, case: Case, strictness: Strictness) -> bool {
        if other.is_everything() || self.same(other) {
            return true;
        }
        let lenient = strictness == Strictness::IgnoreLongS;
        match (&self.kind, &other.kind) {
            (Kind::Glob(a), Kind::Glob(b)) => glob_subset(a, b, case),
            (Kind::Glob(a), Kind::Regex(b)) => glob_in_regex(a, b, case),
            (Kind::Regex(a), Kind::Glob(b)) => regex_in_glob(a, b, case, lenient),
            (Kind::Regex(a), Kind::Regex(b)) => regex_subset(a, b, case),
        }
    }

    /// Proved: no name matches both.
    pub(crate) fn disjoint(&self, other: &Pattern, case: Case) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Glob(a), Kind::Glob(b)) => glob_disjoint(a, b, case),
            (Kind::Glob(g), Kind::Regex(r)) | (Kind::Regex(r), Kind::Glob(g)) => glob_regex_disjoint(g, r, case),
            (Kind::Regex(a), Kind::Regex(b)) => regex_disjoint(a, b, case),
        }
    }
}

fn parse_glob(p: &str) -> Result<Glob, Invalid> {
    let bytes = p.as_bytes();
    let mut atoms = Vec::new();
    let mut star = false;
    let mut i = 0;
    while i < bytes.len() {
        if star {
            return Err(Invalid(format!(
                "`{p}`: `*` must be the last character of a wildcard pattern (DM refuses the pattern)"
            )));
        }
        match bytes[i] {
            b'*' => star = true,
            b'?' => atoms.push(Bytes::ALL),
            b'[' => match range_set(&bytes[i..]) {
                Some((set, len)) => {
                    atoms.push(set);
                    i += len - 1;
                }
                None => atoms.push(Bytes::one(b'[')),
            },
            b => atoms.push(Bytes::one(b)),
        }
        i += 1;
    }
    Ok(Glob { atoms, star, ascii: p.is_ascii() })
}

/// `[...]` at the start of `p` as DM reads it: `!` negates, `a-z` is a range, no closing `]` means a literal `[`.
/// Returns the set and the length of the bracket expression.
fn range_set(p: &[u8]) -> Option<(Bytes, usize)> {
    let close = p.iter().position(|&b| b == b']')?;
    let mut start = 1;
    let mut negate = false;
    if p.get(1) == Some(&b'!') {
        negate = true;
        start = 2;
    }
    let mut set = Bytes::EMPTY;
    let mut i = start;
    while i < close {
        if p.get(i + 1) == Some(&b'-') && i + 2 < close {
            for b in p[i]..=p[i + 2] {
                set.add(b);
            }
            i += 3;
        } else {
            set.add(p[i]);
            i += 1;
        }
    }
    // DM reads `[!]` as the character `!`.
    if negate && set == Bytes::EMPTY {
        return Some((Bytes::one(b'!'), close + 1));
    }
    if negate {
        for w in &mut set.0 {
            *w = !*w;
        }
    }
    Some((set, close + 1))
}

/// What can be read from a Go regular expression without running it. Unparseable expressions (Go accepts a few
/// things this parser does not) yield a shape that proves nothing.
fn regex_shape(re: &str, case: Case) -> RegexShape {
    use regex_syntax::hir::{HirKind, Look};
    let Ok(hir) = regex_syntax::ParserBuilder::new().case_insensitive(case == Case::Insensitive).build().parse(re)
    else {
        return RegexShape::unknown();
    };
    let items: Vec<&regex_syntax::hir::Hir> = match hir.kind() {
        HirKind::Concat(v) => v.iter().collect(),
        _ => vec![&hir],
    };
    let mut it = items.into_iter().peekable();
    let anchored = matches!(it.peek().map(|h| h.kind()), Some(HirKind::Look(Look::Start)));
    if anchored {
        it.next();
    }
    let mut prefix = Vec::new();
    let mut rest: Vec<&regex_syntax::hir::Hir> = Vec::new();
    while let Some(h) = it.next() {
        match single_positions(h) {
            Some(mut p) => prefix.append(&mut p),
            None => {
                // `C{n,}` / `C{n,m}` / `C+`: n more fixed positions, then an open end when nothing follows.
                if let HirKind::Repetition(r) = h.kind()
                    && r.min >= 1
                    && r.min <= 64
                    && let Some(one) = single_positions(&r.sub).filter(|o| o.len() == 1)
                {
                    prefix.extend((0..r.min).map(|_| one[0].clone()));
                    if it.peek().is_none() {
                        break;
                    }
                }
                rest.push(h);
                rest.extend(it.by_ref());
                break;
            }
        }
    }
    let tail = match rest.as_slice() {
        [] => Tail::Open,
        [h] if matches!(h.kind(), HirKind::Look(Look::End)) => Tail::Exact,
        [h] if is_dot_star(h) => Tail::Open,
        _ => Tail::Other,
    };
    RegexShape { anchored, prefix, tail }
}

/// The fixed single-character positions an item stands for (a literal, a class, a fixed repetition of those).
fn single_positions(h: &regex_syntax::hir::Hir) -> Option<Vec<Chars>> {
    use regex_syntax::hir::{Class, HirKind};
    match h.kind() {
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).ok()?;
            Some(s.chars().map(Chars::one).collect())
        }
        HirKind::Class(Class::Unicode(c)) => {
            Some(vec![Chars(c.ranges().iter().map(|r| (r.start(), r.end())).collect())])
        }
        HirKind::Capture(c) => single_positions(&c.sub),
        HirKind::Repetition(r) if r.max == Some(r.min) && r.min <= 64 => {
            let one = single_positions(&r.sub)?;
            Some((0..r.min).flat_map(|_| one.clone()).collect())
        }
        _ => None,
    }
}

/// `.*` (any characters but a newline, any number): with an unanchored end it matches every continuation.
fn is_dot_star(h: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match h.kind() {
        HirKind::Repetition(r) if r.min == 0 && r.max.is_none() => match r.sub.kind() {
            HirKind::Class(Class::Unicode(c)) => c.ranges().first().is_some_and(|f| f.start() == '\0'),
            _ => false,
        },
        _ => false,
    }
}

fn glob_subset(a: &Glob, b: &Glob, case: Case) -> bool {
    if !(a.ascii && b.ascii) {
        return false;
    }
    let fits = |n: usize| (0..n).all(|i| a.atoms[i].in_domain(case).subset(&b.atoms[i]));
    if b.star {
        a.atoms.len() >= b.atoms.len() && fits(b.atoms.len())
    } else {
        !a.star && a.atoms.len() == b.atoms.len() && fits(b.atoms.len())
    }
}

fn glob_disjoint(a: &Glob, b: &Glob, case: Case) -> bool {
    if !(a.ascii && b.ascii) {
        return false;
    }
    let (la, lb) = (a.atoms.len(), b.atoms.len());
    // Lengths: a name of exactly n bytes cannot match a pattern needing more.
    if (!a.star && la < lb) || (!b.star && lb < la) || (!a.star && !b.star && la != lb) {
        return true;
    }
    (0..la.min(lb)).any(|i| a.atoms[i].in_domain(case).disjoint(&b.atoms[i].in_domain(case)))
}

/// Glob ⊆ regex: the glob's names must start with characters the regex's prefix takes.
fn glob_in_regex(g: &Glob, r: &RegexShape, case: Case) -> bool {
    if r.is_everything() {
        return true;
    }
    if !g.ascii {
        return false;
    }
    let k = r.prefix.len();
    let fits_at = |at: usize| {
        (0..k).all(|i| g.atoms[at + i].in_domain(case).subset(&r.prefix[i].ascii_printable().in_domain(case)))
    };
    match (r.anchored, r.tail) {
        (true, Tail::Open) => g.atoms.len() >= k && fits_at(0),
        (true, Tail::Exact) => !g.star && g.atoms.len() == k && fits_at(0),
        // Unanchored: the glob's names must hold the prefix somewhere (at a fixed position of the glob).
        (false, Tail::Open) => g.atoms.len() >= k && (0..=g.atoms.len() - k).any(fits_at),
        _ => false,
    }
}

/// Regex ⊆ glob: an anchored regex's names start with its prefix.
fn regex_in_glob(r: &RegexShape, g: &Glob, case: Case, lenient: bool) -> bool {
    if !g.ascii || !r.anchored {
        return false;
    }
    let m = g.atoms.len();
    let fits =
        |n: usize| (0..n).all(|i| r.prefix[i].ascii_members(case, lenient).is_some_and(|s| s.subset(&g.atoms[i])));
    if g.star { r.prefix.len() >= m && fits(m) } else { r.tail == Tail::Exact && r.prefix.len() == m && fits(m) }
}

fn regex_subset(a: &RegexShape, b: &RegexShape, case: Case) -> bool {
    if b.is_everything() {
        return true;
    }
    if !(a.anchored && b.anchored) {
        return false;
    }
    let k = b.prefix.len();
    let fits = || (0..k).all(|i| a.prefix[i].subset(&b.prefix[i], case));
    match b.tail {
        Tail::Open => a.prefix.len() >= k && fits(),
        Tail::Exact => a.tail == Tail::Exact && a.prefix.len() == k && fits(),
        Tail::Other => false,
    }
}

fn glob_regex_disjoint(g: &Glob, r: &RegexShape, case: Case) -> bool {
    if !g.ascii || !r.anchored {
        return false;
    }
    for (ga, ra) in g.atoms.iter().zip(&r.prefix) {
        // Positions line up only while the glob's positions hold single ASCII characters; then only the ASCII
        // members of the regex's position matter.
        if !ga.ascii_only() {
            return false;
        }
        let mut ascii = Bytes::EMPTY;
        for &(lo, hi) in &ra.0 {
            for c in (lo as u32)..=(hi as u32).min(0x7f) {
                ascii.add(c as u8);
            }
        }
        if ga.in_domain(case).disjoint(&ascii.in_domain(case)) {
            return true;
        }
    }
    false
}

fn regex_disjoint(a: &RegexShape, b: &RegexShape, case: Case) -> bool {
    if !(a.anchored && b.anchored) {
        return false;
    }
    if a.tail == Tail::Exact && b.tail == Tail::Exact && a.prefix.len() != b.prefix.len() {
        return true;
    }
    a.prefix.iter().zip(&b.prefix).any(|(x, y)| x.disjoint(y, case))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: Case = Case::Insensitive;
    const CS: Case = Case::Sensitive;

    fn p(t: &str, case: Case) -> Pattern {
        Pattern::parse(t, case).unwrap()
    }

    fn sub(a: &str, b: &str, case: Case) -> bool {
        p(a, case).subset(&p(b, case), case, Strictness::Strict)
    }

    fn disj(a: &str, b: &str, case: Case) -> bool {
        p(a, case).disjoint(&p(b, case), case)
    }

    #[test]
    fn wildcards() {
        assert!(sub("Upper_DB", "Upper_DB*", CI));
        assert!(sub("Do_Table", "Do_Table*", CS));
        assert!(sub("Do_Table", "do_table*", CI));
        assert!(!sub("Do_Table", "do_table*", CS));
        assert!(sub("test_1", "test_?", CI));
        assert!(sub("t_[0-3]", "t_?", CI));
        assert!(sub("t_[0-3]", "t_[!a]", CI));
        assert!(!sub("t_[0-3]", "t_[2-9]", CI));
        assert!(sub("anything", "*", CI));
        assert!(!sub("t*", "t", CI));
        assert!(!sub("t", "t?*", CI));
        assert!(sub("t1*", "t*", CI));
        assert!(disj("a*", "b*", CI));
        assert!(!disj("A*", "a*", CI));
        assert!(disj("A*", "a*", CS));
        assert!(disj("ab", "abc*", CI));
        assert!(!disj("ab*", "a?c", CI));
        assert!(Pattern::parse("a*b", CI).is_err());
        // `[` without `]` is a literal.
        assert!(sub("a[", "a[", CI) && disj("a[", "ab", CI));
    }

    #[test]
    fn regular_expressions() {
        assert!(sub("test_*", "~^test.*", CI));
        assert!(sub("test_1", "~^test", CI));
        assert!(!sub("test_*", "~^test_[0-9]", CI));
        assert!(sub("~^t[\\d]+", "t*", CI));
        // `(?i)s` also matches `ſ`, which `s*` does not.
        assert!(!sub("~^sharding[\\d]+", "sharding*", CI));
        assert!(sub("~^sharding[\\d]+", "sharding*", CS));
        assert!(p("~^sharding[\\d]+", CI).subset(&p("sharding*", CI), CI, Strictness::IgnoreLongS));
        assert!(sub("~^only$", "only", CI));
        assert!(!sub("~^only", "only", CI));
        assert!(sub("anything", "~.*", CI));
        assert!(sub("~^abc", "~^ab", CI));
        assert!(!sub("~abc", "abc*", CI), "unanchored");
        assert!(sub("dm_syncer_route_*", "~t.*", CI), "unanchored: holds a `t`");
        assert!(!sub("dm_syncer_*", "~x.*", CI));
        assert!(sub("t_2", "~^t_[\\d]+", CI));
        assert!(!sub("t_*", "~^t_[\\d]+", CI));
        assert!(sub("~^t_[\\d]+", "t_*", CI));
        assert!(!sub("~^(a|b)", "a*", CI));
        assert!(disj("~^abc", "abd*", CI));
        assert!(disj("~^a", "~^b", CI));
        assert!(!disj("~^a", "~^A", CI));
        assert!(!disj("~test2?[animal|human]", "test*", CI));
        // Unparseable by this parser: nothing proved.
        assert!(!sub("~^a\\Qb\\E", "a*", CI));
    }

    #[test]
    fn filter_patterns_take_tilde_literally() {
        let f = Pattern::parse_filter("~^a", CI).unwrap();
        assert!(!f.is_regex());
        assert!(f.subset(&Pattern::parse_filter("~*", CI).unwrap(), CI, Strictness::Strict));
    }
}
