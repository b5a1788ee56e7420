//! A decoder of `journalctl --output=export`, the journal's documented, binary-safe stream
//! format (<https://systemd.io/JOURNAL_EXPORT_FORMATS/>): entries separated by an empty
//! line, each field either `NAME=text\n` or `NAME\n`, a little-endian 64-bit length, the
//! bytes and `\n`.
//!
//! It is fed the output as it arrives, keeps only the fields a [`JournalLine`] needs and at
//! most [`MAX_MESSAGE_BYTES`] of each, so memory stays bounded whatever a service (or a
//! hostile peer) logged; input that breaks the format ends decoding, keeping the entries
//! completed before it.

use std::time::{Duration, UNIX_EPOCH};

use super::{JournalLine, MAX_MESSAGE_BYTES, Priority};

/// The longest field name kept; the format's names are far shorter (journald allows 64).
const MAX_NAME: usize = 64;

/// The fields read: the rest are skipped without being stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Message,
    MessageId,
    Priority,
    Identifier,
    Comm,
    Pid,
    SyslogPid,
    Realtime,
    StreamInvocation,
    ManagerInvocation,
    UserManagerInvocation,
    Unit,
    UserUnit,
    ManagerUnit,
    UserManagerUnit,
}

impl Field {
    fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"MESSAGE" => Field::Message,
            b"MESSAGE_ID" => Field::MessageId,
            b"PRIORITY" => Field::Priority,
            b"SYSLOG_IDENTIFIER" => Field::Identifier,
            b"_COMM" => Field::Comm,
            b"_PID" => Field::Pid,
            b"SYSLOG_PID" => Field::SyslogPid,
            b"__REALTIME_TIMESTAMP" => Field::Realtime,
            b"_SYSTEMD_INVOCATION_ID" => Field::StreamInvocation,
            b"INVOCATION_ID" => Field::ManagerInvocation,
            b"USER_INVOCATION_ID" => Field::UserManagerInvocation,
            b"_SYSTEMD_UNIT" => Field::Unit,
            b"_SYSTEMD_USER_UNIT" => Field::UserUnit,
            b"UNIT" => Field::ManagerUnit,
            b"USER_UNIT" => Field::UserManagerUnit,
            _ => return None,
        })
    }

    const ALL: usize = 15;
}

/// The export fields [`Decoder`] reads, for `journalctl --output-fields=` (the `__` fields
/// are always written).
pub(crate) const OUTPUT_FIELDS: &str = "MESSAGE,MESSAGE_ID,PRIORITY,SYSLOG_IDENTIFIER,_COMM,_PID,\
    SYSLOG_PID,_SYSTEMD_INVOCATION_ID,INVOCATION_ID,USER_INVOCATION_ID,_SYSTEMD_UNIT,_SYSTEMD_USER_UNIT,UNIT,USER_UNIT";

/// Which run of a unit a journal entry is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Whose {
    /// It carries the run's invocation id (`_SYSTEMD_INVOCATION_ID` from its processes,
    /// `INVOCATION_ID` or `USER_INVOCATION_ID` from the manager).
    ThisRun,
    /// It is the unit's, from its processes or from the manager about it, with another
    /// invocation id: another run's.
    OtherRun,
    /// Written by the unit's processes (`_SYSTEMD_UNIT`), with no invocation id at all.
    /// journald learns a process's id from its cgroup: a process that has exited by the time
    /// journald reads its output has its lines stored with the unit, from the stream, but
    /// without the id. Which run such a line is of shows only by where it lies among the
    /// others.
    UnitWithoutRun,
    /// Neither: another unit's, or about the unit from someone else.
    Unrelated,
}

/// One entry: the first value of each field read, at most [`MAX_MESSAGE_BYTES`] of it, and
/// the value's whole length.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    values: [Option<(Vec<u8>, usize)>; Field::ALL],
}

impl Entry {
    fn get(&self, field: Field) -> Option<&[u8]> {
        self.values[field as usize]
            .as_ref()
            .map(|(v, _)| v.as_slice())
    }

    fn number<T: std::str::FromStr>(&self, field: Field) -> Option<T> {
        std::str::from_utf8(self.get(field)?).ok()?.parse().ok()
    }

    /// The entry's `MESSAGE_ID`, as its 32 hex digits.
    pub(crate) fn message_id(&self) -> Option<&[u8]> {
        self.get(Field::MessageId)
    }

    /// Which run of `unit` the entry is of, given the run `invocation` (32 hex digits) that is
    /// looked for.
    pub(crate) fn whose(&self, invocation: &[u8], unit: &[u8]) -> Whose {
        let of_unit = |a, b| self.get(a) == Some(unit) || self.get(b) == Some(unit);
        let by_processes = of_unit(Field::Unit, Field::UserUnit);
        let by_manager = of_unit(Field::ManagerUnit, Field::UserManagerUnit);
        let stream = self.get(Field::StreamInvocation);
        let manager = [Field::ManagerInvocation, Field::UserManagerInvocation].map(|f| self.get(f));
        if stream == Some(invocation) || manager.contains(&Some(invocation)) {
            return Whose::ThisRun;
        }
        let other = |id: Option<&[u8]>| id.is_some_and(|id| id != invocation);
        if (by_processes && other(stream)) || (by_manager && manager.into_iter().any(other)) {
            return Whose::OtherRun;
        }
        if by_processes && stream.is_none() && manager == [None, None] {
            return Whose::UnitWithoutRun;
        }
        Whose::Unrelated
    }

    /// The entry as a line safe to print.
    pub(crate) fn into_line(self) -> JournalLine {
        let text = |field| self.get(field).map(|v| make_safe(v, false));
        let (message, cut_from) = match &self.values[Field::Message as usize] {
            Some((kept, len)) => {
                let cut = *len > kept.len();
                (make_safe(kept, cut), cut.then_some(*len))
            }
            None => (String::new(), None),
        };
        JournalLine {
            time: UNIX_EPOCH
                + Duration::from_micros(self.number(Field::Realtime).unwrap_or_default()),
            priority: self.get(Field::Priority).and_then(Priority::from_digit),
            identifier: text(Field::Identifier).or_else(|| text(Field::Comm)),
            pid: self
                .number(Field::Pid)
                .or_else(|| self.number(Field::SyslogPid)),
            message,
            cut_from,
        }
    }
}

/// Where the decoder is in the stream.
#[derive(Debug)]
enum State {
    /// At the start of a line: a field name, or an empty line ending the entry.
    Name,
    /// In a text value (after `=`), up to `\n`.
    Text,
    /// Reading the 8 length bytes of a binary value; `have` read so far.
    Length { have: usize, bytes: [u8; 8] },
    /// In a binary value, `left` bytes to go.
    Binary { left: u64 },
    /// After a binary value: its `\n`.
    BinaryEnd,
    /// The input broke the format: everything after is ignored.
    Broken,
}

/// Decodes export output fed in pieces, keeping at most `max_entries` entries.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
    name: Vec<u8>,
    field: Option<Field>,
    value: Vec<u8>,
    value_len: usize,
    entry: Entry,
    entry_has_fields: bool,
    entries: Vec<Entry>,
    max_entries: usize,
}

impl Decoder {
    pub(crate) fn new(max_entries: usize) -> Self {
        Decoder {
            state: State::Name,
            name: Vec::new(),
            field: None,
            value: Vec::new(),
            value_len: 0,
            entry: Entry::default(),
            entry_has_fields: false,
            entries: Vec::new(),
            max_entries,
        }
    }

    /// Whether `max_entries` entries are complete (or the input broke the format): more
    /// input would change nothing.
    pub(crate) fn is_done(&self) -> bool {
        self.entries.len() >= self.max_entries || matches!(self.state, State::Broken)
    }

    /// Whether the input broke the format.
    pub(crate) fn is_broken(&self) -> bool {
        matches!(self.state, State::Broken)
    }

    /// Decodes the next piece of the stream.
    pub(crate) fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() && !self.is_done() {
            let used = self.step(input);
            input = &input[used..];
        }
    }

    /// The stream has ended: the entries completed (an entry cut short by the end is kept
    /// if its fields were whole).
    pub(crate) fn finish(mut self) -> Vec<Entry> {
        if matches!(self.state, State::Name) && self.entry_has_fields {
            self.end_entry();
        }
        self.entries.truncate(self.max_entries);
        self.entries
    }

    /// Consumes some of `input` (at least one byte), returning how much.
    fn step(&mut self, input: &[u8]) -> usize {
        match &mut self.state {
            State::Name => {
                let Some(at) = input.iter().position(|&b| b == b'=' || b == b'\n') else {
                    self.push_name(input);
                    return input.len();
                };
                self.push_name(&input[..at]);
                let name = std::mem::take(&mut self.name);
                match input[at] {
                    b'\n' if name.is_empty() => self.end_entry(),
                    b'\n' => {
                        self.start_value(&name);
                        self.state = State::Length {
                            have: 0,
                            bytes: [0; 8],
                        };
                    }
                    _ if name.is_empty() => self.state = State::Broken,
                    _ => {
                        self.start_value(&name);
                        self.state = State::Text;
                    }
                }
                at + 1
            }
            State::Text => match input.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.push_value(&input[..at]);
                    self.end_value();
                    self.state = State::Name;
                    at + 1
                }
                None => {
                    self.push_value(input);
                    input.len()
                }
            },
            State::Length { have, bytes } => {
                let take = (8 - *have).min(input.len());
                bytes[*have..*have + take].copy_from_slice(&input[..take]);
                *have += take;
                if *have == 8 {
                    let left = u64::from_le_bytes(*bytes);
                    self.state = if left == 0 {
                        State::BinaryEnd
                    } else {
                        State::Binary { left }
                    };
                }
                take
            }
            State::Binary { left } => {
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                *left -= take as u64;
                let done = *left == 0;
                self.push_value(&input[..take]);
                if done {
                    self.state = State::BinaryEnd;
                }
                take
            }
            State::BinaryEnd => {
                if input[0] == b'\n' {
                    self.end_value();
                    self.state = State::Name;
                } else {
                    self.state = State::Broken;
                }
                1
            }
            State::Broken => input.len(),
        }
    }

    fn push_name(&mut self, part: &[u8]) {
        let room = MAX_NAME.saturating_sub(self.name.len());
        self.name.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn start_value(&mut self, name: &[u8]) {
        self.field = Field::from_name(name);
        self.value.clear();
        self.value_len = 0;
        self.entry_has_fields = true;
    }

    fn push_value(&mut self, part: &[u8]) {
        self.value_len = self.value_len.saturating_add(part.len());
        if self.field.is_some() {
            let room = MAX_MESSAGE_BYTES.saturating_sub(self.value.len());
            self.value.extend_from_slice(&part[..part.len().min(room)]);
        }
    }

    fn end_value(&mut self) {
        if let Some(field) = self.field.take() {
            let slot = &mut self.entry.values[field as usize];
            if slot.is_none() {
                *slot = Some((std::mem::take(&mut self.value), self.value_len));
            }
        }
    }

    fn end_entry(&mut self) {
        if std::mem::take(&mut self.entry_has_fields) {
            self.entries.push(std::mem::take(&mut self.entry));
        }
    }
}

/// Text safe to print on a terminal or in a log: invalid UTF-8 becomes U+FFFD, and control
/// characters (C0, DEL, C1) and the bidirectional overrides become visible escapes
/// (`\n`, `\x1b`, `\u{9b}`, `\u{202e}`). `cut` says the bytes end where a longer value was
/// cut, so a character split there is dropped rather than shown as U+FFFD.
pub(crate) fn make_safe(bytes: &[u8], cut: bool) -> String {
    let bytes = match std::str::from_utf8(bytes) {
        Err(e) if cut && e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push('\\'),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = format!("{name}\n").into_bytes();
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
        out
    }

    fn decode_in_pieces(input: &[u8], piece: usize, max: usize) -> Vec<JournalLine> {
        let mut d = Decoder::new(max);
        for chunk in input.chunks(piece) {
            d.feed(chunk);
        }
        d.finish().into_iter().map(Entry::into_line).collect()
    }

    #[test]
    fn text_and_binary_fields_decode_whatever_the_pieces() {
        let mut input = b"__CURSOR=s=1\n__REALTIME_TIMESTAMP=1796211143000000\nPRIORITY=3\n\
            SYSLOG_IDENTIFIER=app\n_PID=42\nMESSAGE=first\n\n"
            .to_vec();
        input.extend(b"__REALTIME_TIMESTAMP=1796211144000000\n_COMM=sh\nSYSLOG_PID=7\n");
        input.extend(binary("MESSAGE", b"two\nlines\x1b[31m"));
        input.extend(b"\n");
        for piece in [1, 2, 3, 7, 1000] {
            let lines = decode_in_pieces(&input, piece, 10);
            assert_eq!(lines.len(), 2, "piece {piece}");
            assert_eq!(lines[0].message, "first");
            assert_eq!(lines[0].priority, Some(Priority::Error));
            assert_eq!(lines[0].identifier.as_deref(), Some("app"));
            assert_eq!(lines[0].pid, Some(42));
            assert_eq!(lines[0].to_string(), "Dec 02 11:32:23 app[42]: first");
            assert_eq!(lines[1].message, "two\\nlines\\x1b[31m");
            assert_eq!(lines[1].identifier.as_deref(), Some("sh"));
            assert_eq!(lines[1].pid, Some(7));
            assert_eq!(lines[1].priority, None);
        }
    }

    #[test]
    fn long_values_are_cut_and_memory_stays_bounded() {
        let huge = vec![b'x'; 1 << 20];
        let mut input = b"MESSAGE=".to_vec();
        input.extend(&huge);
        input.extend(b"\n\n");
        input.extend(binary("MESSAGE", &huge));
        input.extend(b"\n");
        let lines = decode_in_pieces(&input, 65_536, 10);
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line.message.len(), MAX_MESSAGE_BYTES);
            assert_eq!(line.cut_from, Some(1 << 20));
        }
    }

    #[test]
    fn a_cut_through_a_character_drops_it() {
        let mut value = vec![b'a'; MAX_MESSAGE_BYTES - 1];
        value.extend("é and more".as_bytes());
        let lines = decode_in_pieces(&binary("MESSAGE", &value), 100, 1);
        assert_eq!(lines[0].message, "a".repeat(MAX_MESSAGE_BYTES - 1));
        assert_eq!(lines[0].cut_from, Some(value.len()));
    }

    #[test]
    fn broken_input_keeps_the_entries_before_it() {
        let mut input = b"MESSAGE=ok\n\n".to_vec();
        input.extend(b"MESSAGE\n\x05\0\0\0\0\0\0\0abcdeX");
        input.extend(b"MESSAGE=never\n\n");
        let mut d = Decoder::new(10);
        d.feed(&input);
        assert!(d.is_broken());
        let lines: Vec<_> = d.finish().into_iter().map(Entry::into_line).collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].message, "ok");
        // A huge declared length with nothing behind it ends with no entry, not a panic.
        let mut d = Decoder::new(10);
        d.feed(b"MESSAGE\n\xff\xff\xff\xff\xff\xff\xff\xffabc");
        assert!(d.finish().is_empty());
        // `=` with no name.
        let mut d = Decoder::new(10);
        d.feed(b"=x\n\n");
        assert!(d.is_broken());
    }

    #[test]
    fn only_max_entries_are_kept() {
        let input = b"MESSAGE=a\n\nMESSAGE=b\n\nMESSAGE=c\n\n";
        let lines = decode_in_pieces(input, 1, 2);
        let messages: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["a", "b"]);
    }

    #[test]
    fn text_is_made_safe() {
        assert_eq!(
            make_safe(b"a\x1b]0;title\x07b", false),
            "a\\x1b]0;title\\x07b"
        );
        assert_eq!(
            make_safe("\u{9b}31m\u{202e}".as_bytes(), false),
            "\\u{9b}31m\\u{202e}"
        );
        assert_eq!(make_safe(b"\xff\r\x7f", false), "\u{fffd}\\r\\x7f");
        assert_eq!(make_safe("tab\there é".as_bytes(), false), "tab\\there é");
    }
}
