//! Replication positions: the fake upstream's binlog (its head, purged files and GTIDs), each subtask's
//! checkpoint and where every (re)start of it began, and the checkpoints a delete leaves in the downstream's meta
//! schema (docs/dm-behaviour.md §7, §8).
//!
//! A position is one number, `file index × FILE_BYTES + offset`, shown as DM shows a binlog position,
//! `(mysql-bin.000012, 3456)`. A subtask's syncer advances at a per-source rate (derived from the seed) for
//! every millisecond it runs in the Sync unit, and stays put while it is stopped or paused. The upstream's head
//! (`master_binlog`) is the highest position any subtask of the source has reached, or its initial position.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

/// Bytes per binlog file (MySQL's default `max_binlog_size`).
const FILE_BYTES: u64 = 1 << 30;
/// Binlog bytes per transaction: numbers GTIDs from positions.
const TXN_BYTES: u64 = 512;
/// The safe-mode initialization phase a syncer run starts with when nothing else is configured: twice the
/// default 30 s checkpoint flush interval (docs/dm-behaviour.md §8).
pub(crate) const DEFAULT_SAFE_MODE_DURATION: &str = "60s";
/// Start records kept per subtask (the oldest are dropped).
const MAX_STARTS: usize = 32;

/// A task's binlog start position for one source (`source_conf` / dmctl `meta`): (name, pos, gtid).
pub(crate) type BinlogMeta = (String, i64, String);

/// A binlog position as one ordered number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos(pub u64);

impl Pos {
    pub fn at(file: u64, offset: u64) -> Pos {
        Pos(file.saturating_mul(FILE_BYTES).saturating_add(offset.min(FILE_BYTES - 1)))
    }
    pub fn file(self) -> u64 {
        self.0 / FILE_BYTES
    }
    pub fn offset(self) -> u64 {
        self.0 % FILE_BYTES
    }
    fn advance(self, bytes: u64) -> Pos {
        Pos(self.0.saturating_add(bytes))
    }
    /// DM's text for a position: `(mysql-bin.000012, 3456)`.
    pub fn show(self, base: &str) -> String {
        format!("({}, {})", file_name(base, self.file()), self.offset())
    }
}

pub(crate) fn file_name(base: &str, index: u64) -> String {
    format!("{base}.{index:06}")
}

/// `mysql-bin.000012` → (`mysql-bin`, 12).
pub(crate) fn parse_file_name(name: &str) -> Option<(String, u64)> {
    let (base, idx) = name.rsplit_once('.')?;
    if base.is_empty() || idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base.to_string(), idx.parse().ok()?))
}

/// FNV-1a: the same numbers in every run and on every machine.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in *p {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

// ---------------------------------------------------------------------------------------------------- GTIDs

/// A GTID set: MySQL `uuid:1-5:7,uuid2:1-3`, or MariaDB `domain-server-seq` (one sequence per domain).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GtidSet {
    mysql: BTreeMap<String, Vec<(u64, u64)>>,
    mariadb: BTreeMap<u64, u64>,
}

impl GtidSet {
    pub fn parse(s: &str) -> Option<GtidSet> {
        let mut set = GtidSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some((uuid, rest)) = part.split_once(':') {
                let uuid = uuid.trim().to_ascii_lowercase();
                if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                    return None;
                }
                for iv in rest.split(':') {
                    let (a, b) = match iv.split_once('-') {
                        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                        None => {
                            let n: u64 = iv.trim().parse().ok()?;
                            (n, n)
                        }
                    };
                    if a == 0 || b < a {
                        return None;
                    }
                    set.mysql.entry(uuid.clone()).or_default().push((a, b));
                }
            } else {
                let nums: Vec<u64> = part.split('-').map(|n| n.trim().parse().ok()).collect::<Option<_>>()?;
                let [domain, _server, seq] = nums[..] else { return None };
                let e = set.mariadb.entry(domain).or_default();
                *e = (*e).max(seq);
            }
        }
        Some(set)
    }

    /// Whether every transaction of `other` is in this set.
    pub fn contains(&self, other: &GtidSet) -> bool {
        let mysql_ok = other.mysql.iter().all(|(uuid, ivs)| {
            let mine = self.mysql.get(uuid).map(Vec::as_slice).unwrap_or(&[]);
            ivs.iter().all(|&(a, b)| covered(mine, a, b))
        });
        let maria_ok = other.mariadb.iter().all(|(d, seq)| self.mariadb.get(d).is_some_and(|m| m >= seq));
        mysql_ok && maria_ok
    }

    /// The highest transaction number this set holds for `uuid` (MySQL) or in any domain (MariaDB).
    fn last_of(&self, uuid: &str) -> Option<u64> {
        let m = self.mysql.get(uuid).and_then(|ivs| ivs.iter().map(|&(_, b)| b).max());
        m.or_else(|| self.mariadb.values().copied().max())
    }
}

/// Whether the intervals `ivs` cover every number of `a..=b`.
fn covered(ivs: &[(u64, u64)], a: u64, b: u64) -> bool {
    let mut sorted = ivs.to_vec();
    sorted.sort();
    let mut next = a;
    for (x, y) in sorted {
        if x > next {
            break;
        }
        if y >= next {
            next = y.saturating_add(1);
        }
        if next > b {
            return true;
        }
    }
    next > b
}

// ---------------------------------------------------------------------------------------------------- upstream

/// What the upstream MySQL of a source looks like from DM: its GTID identity and which binlogs it still has.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// The binlog base name (`mysql-bin`), taken from the first position seen for the source.
    pub base: Option<String>,
    /// The oldest binlog file still present (`PURGE BINARY LOGS` removed the older ones); `None`: all present.
    pub oldest: Option<u64>,
    /// `gtid_purged`, when set explicitly; otherwise derived from `oldest`.
    pub purged_gtid: Option<String>,
    /// The highest position the upstream has been seen at (its head).
    pub head: Pos,
}

/// The identity of an upstream, for its GTIDs.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamId<'a> {
    pub source: &'a str,
    pub mariadb: bool,
    pub server_id: u32,
    /// `GTID_MODE=ON` upstream (hosts containing `no-gtid` have it off).
    pub gtid_mode: bool,
    /// The source's `enable_gtid`: the syncer follows GTIDs.
    pub enable_gtid: bool,
}

/// Checkpoints left in a downstream's meta schema, keyed by (target `host:port`, meta schema, task).
pub(crate) type MetaKey = (String, String, String);

/// One source's saved progress: running time (which unit it reached) and syncer checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Saved {
    pub worked: Duration,
    pub pos: Option<Pos>,
}

/// Where a run of a subtask began, and whether safe mode was on for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StartRecord {
    /// Order of this start among all starts of the simulator.
    pub seq: u64,
    /// `checkpoint` (its own, or one found in the downstream meta), `source_conf` (the task's binlog meta),
    /// `dump` (the position the full dump recorded), `start_time` (the start request's `start_time`), or `none`
    /// (a mode without incremental replication).
    pub from: &'static str,
    pub pos: Option<Pos>,
    pub gtid: Option<String>,
    pub safe_mode: Option<SafeModeAtStart>,
}

/// Safe mode at the start of a syncer run (docs/dm-behaviour.md §8).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SafeModeAtStart {
    /// `safe_mode_time_duration` (the start request), `config` (`safe_mode: true`, on for the whole run), or
    /// `initialization` (DM's initialization phase after every start).
    pub by: &'static str,
    /// How long it stays on; `None`: the whole run.
    pub duration: Option<String>,
}

/// The replication position of one subtask.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SubCkpt {
    /// The checkpoint found in the downstream meta when the subtask was created (a task re-created over kept
    /// checkpoints).
    pub restored: Option<Pos>,
    /// The syncer's line: it was at `.0` when its Sync running time was `.1`.
    pub line: Option<(Pos, Duration)>,
    pub starts: Vec<StartRecord>,
}

/// What a subtask's run start needs to know.
pub(crate) struct RunStart<'a> {
    pub id: UpstreamId<'a>,
    pub mode: &'a str,
    /// The task's `source_conf` binlog meta for this source: (name, pos, gtid).
    pub meta: Option<(String, i64, String)>,
    pub cli_args: &'a BTreeMap<String, String>,
    /// `incr_migrate_conf.safe_mode` (or a dmctl syncer's `safe-mode`).
    pub cfg_safe_mode: bool,
    /// A dmctl syncer's `safe-mode-duration`; `None`: DM's default.
    pub safe_mode_duration: Option<String>,
    /// Running time before this run (`SubTask::worked`).
    pub worked: Duration,
    pub phase: Duration,
}

/// The `sync_status` fields that come from positions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncView {
    pub syncer_binlog: String,
    pub syncer_binlog_gtid: String,
    pub master_binlog: String,
    pub master_binlog_gtid: String,
    pub synced: bool,
    pub seconds_behind_master: i64,
    pub total_events: i64,
}

/// Everything position-related of the simulated cluster.
#[derive(Debug, Clone)]
pub(crate) struct Binlogs {
    seed: u64,
    pub upstreams: BTreeMap<String, Upstream>,
    pub meta: BTreeMap<MetaKey, BTreeMap<String, Saved>>,
    next_seq: u64,
}

impl Binlogs {
    pub fn new(seed: u64) -> Binlogs {
        Binlogs { seed, upstreams: BTreeMap::new(), meta: BTreeMap::new(), next_seq: 1 }
    }

    fn h(&self, source: &str, what: &str) -> u64 {
        hash(&[&self.seed.to_le_bytes(), source.as_bytes(), what.as_bytes()])
    }

    pub fn up(&mut self, source: &str) -> &mut Upstream {
        let h = self.h(source, "head");
        self.upstreams.entry(source.to_string()).or_insert_with(|| Upstream {
            base: None,
            oldest: None,
            purged_gtid: None,
            head: Pos::at(1 + h % 9, 4 + (h >> 8) % 50_000),
        })
    }

    fn base(&mut self, source: &str) -> String {
        self.up(source).base.clone().unwrap_or_else(|| "mysql-bin".into())
    }

    /// Binlog bytes the syncer of `source` replicates per millisecond in the Sync unit.
    pub fn rate(&self, source: &str) -> u64 {
        64 + self.h(source, "rate") % 128
    }

    /// The upstream's `server_uuid`, derived from the seed and the source name.
    pub fn server_uuid(&self, source: &str) -> String {
        let a = self.h(source, "uuid-a");
        let b = self.h(source, "uuid-b");
        let hex = format!("{a:016x}{b:016x}");
        format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
    }

    /// The GTID set executed up to `pos`.
    pub fn gtid_at(&self, id: &UpstreamId, pos: Pos) -> String {
        let n = pos.0 / TXN_BYTES;
        if n == 0 {
            String::new()
        } else if id.mariadb {
            format!("0-{}-{n}", id.server_id)
        } else {
            format!("{}:1-{n}", self.server_uuid(id.source))
        }
    }

    /// The position a GTID set stands for on this upstream (its transactions of this server, as numbered by
    /// [`Self::gtid_at`]); `None` when it is not a GTID set.
    fn pos_of_gtid(&self, source: &str, gtid: &str) -> Option<Pos> {
        let set = GtidSet::parse(gtid)?;
        let n = set.last_of(&self.server_uuid(source)).unwrap_or(0);
        Some(Pos(n.saturating_mul(TXN_BYTES)))
    }

    /// The start position a task's `source_conf` meta names: the GTID set when the source follows GTIDs and one
    /// is given, else the binlog file and position.
    pub fn pos_of_meta(&mut self, id: &UpstreamId, meta: &(String, i64, String)) -> Pos {
        let (name, pos, gtid) = meta;
        if id.enable_gtid
            && !gtid.is_empty()
            && let Some(p) = self.pos_of_gtid(id.source, gtid)
        {
            return p;
        }
        match parse_file_name(name) {
            Some((base, idx)) => {
                let up = self.up(id.source);
                up.base.get_or_insert(base);
                Pos::at(idx, u64::try_from(*pos).unwrap_or(0))
            }
            None => Pos::default(),
        }
    }

    /// Sets which binlogs the upstream of `source` still has: `oldest` names the oldest file left (`None`: all),
    /// `purged_gtid` its `gtid_purged` (`None`: what the purged files held).
    pub fn purge(&mut self, source: &str, oldest: Option<&str>, purged_gtid: Option<&str>) -> Result<(), String> {
        let oldest = match oldest {
            None => None,
            Some(n) => Some(
                parse_file_name(n).ok_or_else(|| format!("{n:?} is not a binlog file name like mysql-bin.000010"))?,
            ),
        };
        if let Some(g) = purged_gtid
            && GtidSet::parse(g).is_none()
        {
            return Err(format!("{g:?} is not a GTID set"));
        }
        let up = self.up(source);
        match oldest {
            Some((base, idx)) => {
                up.base = Some(base);
                up.oldest = Some(idx);
                up.head = up.head.max(Pos::at(idx, 4));
            }
            None => up.oldest = None,
        }
        up.purged_gtid = purged_gtid.map(str::to_string);
        Ok(())
    }

    /// `gtid_purged` of the upstream: explicit, or everything before its oldest file.
    fn purged_set(&mut self, id: &UpstreamId) -> Option<String> {
        let up = self.up(id.source).clone();
        up.purged_gtid.or_else(|| up.oldest.map(|f| self.gtid_at(id, Pos::at(f, 0))))
    }

    /// MySQL's answer when a replica asks for binlogs from `start` that are gone, if they are: by file and
    /// position, or (following GTIDs) by the GTID set the replica already has.
    pub fn purged_error(&mut self, id: &UpstreamId, start: Pos, start_gtid: Option<&str>) -> Option<String> {
        if id.enable_gtid && id.gtid_mode {
            let purged = self.purged_set(id)?;
            let purged = GtidSet::parse(&purged).unwrap_or_default();
            let have = match start_gtid {
                Some(g) => GtidSet::parse(g).unwrap_or_default(),
                None => GtidSet::parse(&self.gtid_at(id, start)).unwrap_or_default(),
            };
            return (!have.contains(&purged)).then(|| {
                "ERROR 1236 (HY000): The slave is connecting using CHANGE MASTER TO MASTER_AUTO_POSITION = 1, but the master has purged binary logs containing GTIDs that the slave requires.".to_string()
            });
        }
        let oldest = self.up(id.source).oldest?;
        (start.file() < oldest)
            .then(|| "ERROR 1236 (HY000): Could not find first log file name in binary log index file".to_string())
    }

    /// A subtask's syncer (re)starts: decide where from and with which safe mode, record it, and return the
    /// error the run fails with if that position is purged upstream.
    pub fn on_run_start(&mut self, ck: &mut SubCkpt, rs: RunStart) -> Option<String> {
        let sync_now = sync_time(rs.mode, rs.worked, rs.phase);
        let syncs = matches!(rs.mode, "incremental" | "all");
        let mut start_gtid = None;
        let (from, pos) = if !syncs {
            ("none", None)
        } else if rs.cli_args.get("start_time").is_some_and(|s| !s.is_empty()) {
            // The start request's start_time wins over any checkpoint (docs/dm-behaviour.md §8). Positions are not
            // tied to clock time here: the run starts at the upstream's head.
            let head = self.up(rs.id.source).head;
            ck.line = Some((head, sync_now));
            ("start_time", Some(head))
        } else if let Some(p) = self.position(ck, rs.id.source, rs.mode, rs.worked, rs.phase) {
            ("checkpoint", Some(p))
        } else if let Some(p) = ck.restored {
            ck.line = Some((p, sync_now));
            ("checkpoint", Some(p))
        } else if rs.mode == "incremental" {
            let meta = rs.meta.clone().unwrap_or_default();
            let p = self.pos_of_meta(&rs.id, &meta);
            if rs.id.enable_gtid && !meta.2.is_empty() {
                start_gtid = Some(meta.2.clone());
            }
            ck.line = Some((p, sync_now));
            ("source_conf", Some(p))
        } else {
            // all: the syncer continues from the position the dump recorded, the head when the dump began.
            let head = self.up(rs.id.source).head;
            ck.line = Some((head, sync_now));
            ("dump", Some(head))
        };
        let safe_mode = syncs.then(|| {
            if let Some(d) = rs.cli_args.get("safe_mode_time_duration").filter(|d| !d.is_empty()) {
                SafeModeAtStart { by: "safe_mode_time_duration", duration: Some(d.clone()) }
            } else if rs.cfg_safe_mode {
                SafeModeAtStart { by: "config", duration: None }
            } else {
                let d = rs.safe_mode_duration.clone().unwrap_or_else(|| DEFAULT_SAFE_MODE_DURATION.into());
                SafeModeAtStart { by: "initialization", duration: Some(d) }
            }
        });
        let gtid =
            pos.filter(|_| rs.id.enable_gtid).map(|p| start_gtid.clone().unwrap_or_else(|| self.gtid_at(&rs.id, p)));
        let seq = self.next_seq;
        self.next_seq += 1;
        ck.starts.push(StartRecord { seq, from, pos, gtid, safe_mode });
        if ck.starts.len() > MAX_STARTS {
            ck.starts.remove(0);
        }
        let p = pos?;
        if let Some(up) = self.upstreams.get_mut(rs.id.source) {
            up.head = up.head.max(p);
        }
        self.purged_error(&rs.id, p, start_gtid.as_deref())
    }

    /// The syncer's checkpoint now, `None` before its first run.
    pub fn position(&self, ck: &SubCkpt, source: &str, mode: &str, worked: Duration, phase: Duration) -> Option<Pos> {
        let (at, base) = ck.line?;
        let ms = sync_time(mode, worked, phase).saturating_sub(base).as_millis();
        Some(at.advance(u64::try_from(ms).unwrap_or(u64::MAX).saturating_mul(self.rate(source))))
    }

    /// The position fields of a subtask's `sync_status`.
    pub fn sync_view(
        &mut self,
        ck: &SubCkpt,
        id: &UpstreamId,
        mode: &str,
        worked: Duration,
        phase: Duration,
    ) -> SyncView {
        let pos = self.position(ck, id.source, mode, worked, phase);
        let base = self.base(id.source);
        let up = self.up(id.source);
        if let Some(p) = pos {
            up.head = up.head.max(p);
        }
        let head = up.head;
        let pos = pos.unwrap_or(head);
        let gtid = |p: Pos| if id.gtid_mode { self.gtid_at(id, p) } else { String::new() };
        let master_binlog_gtid = gtid(head);
        let syncer_binlog_gtid = if id.enable_gtid { gtid(pos) } else { String::new() };
        let synced = if id.enable_gtid { master_binlog_gtid == syncer_binlog_gtid } else { pos == head };
        let behind_ms = (head.0.saturating_sub(pos.0)) / self.rate(id.source).max(1);
        let start = ck.line.map(|(p, _)| p).unwrap_or(pos);
        SyncView {
            syncer_binlog: pos.show(&base),
            syncer_binlog_gtid,
            master_binlog: head.show(&base),
            master_binlog_gtid,
            synced,
            seconds_behind_master: i64::try_from(behind_ms / 1000).unwrap_or(i64::MAX),
            total_events: i64::try_from(pos.0.saturating_sub(start.0) / TXN_BYTES).unwrap_or(i64::MAX),
        }
    }

    /// A subtask is deleted: its progress as it would be found in the downstream meta.
    pub fn saved(&self, ck: &SubCkpt, source: &str, mode: &str, worked: Duration, phase: Duration) -> Saved {
        Saved { worked, pos: self.position(ck, source, mode, worked, phase).or(ck.restored) }
    }

    /// The test-only view of a subtask's positions.
    pub fn snapshot_sub(
        &mut self,
        ck: &SubCkpt,
        id: &UpstreamId,
        mode: &str,
        worked: Duration,
        phase: Duration,
    ) -> Value {
        let base = self.base(id.source);
        let pos = self.position(ck, id.source, mode, worked, phase);
        let show = |p: Option<Pos>| p.map(|p| p.show(&base));
        let starts: Vec<Value> = ck
            .starts
            .iter()
            .map(|s| {
                json!({
                    "seq": s.seq,
                    "from": s.from,
                    "position": show(s.pos),
                    "gtid": s.gtid,
                    "safe_mode": s.safe_mode.as_ref().map(|m| json!({"by": m.by, "duration": m.duration})),
                })
            })
            .collect();
        json!({
            "position": show(pos),
            "gtid": pos.filter(|_| id.enable_gtid).map(|p| self.gtid_at(id, p)),
            "restored": show(ck.restored),
            "starts": starts,
            "last_start": starts.last().cloned(),
        })
    }

    /// The test-only view of upstreams and of checkpoints kept in downstream meta schemas.
    pub fn snapshot(&mut self, sources: &BTreeSet<String>) -> (Value, Value) {
        for s in sources {
            self.up(s);
        }
        let names: Vec<String> = self.upstreams.keys().cloned().collect();
        let mut ups = serde_json::Map::new();
        for s in names {
            let base = self.base(&s);
            let uuid = self.server_uuid(&s);
            let up = self.up(&s).clone();
            ups.insert(
                s.clone(),
                json!({
                    "server_uuid": uuid,
                    "master_binlog": up.head.show(&base),
                    "oldest_binlog": up.oldest.map(|f| file_name(&base, f)),
                    "purged_gtid": up.purged_gtid,
                    "rate_bytes_per_ms": self.rate(&s),
                }),
            );
        }
        let meta: Vec<Value> = self
            .meta
            .iter()
            .map(|((target, schema, task), per)| {
                let sources: serde_json::Map<String, Value> = per
                    .iter()
                    .map(|(s, saved)| {
                        let base =
                            self.upstreams.get(s).and_then(|u| u.base.clone()).unwrap_or_else(|| "mysql-bin".into());
                        (s.clone(), json!(saved.pos.map(|p| p.show(&base))))
                    })
                    .collect();
                json!({"target": target, "meta_schema": schema, "task": task, "checkpoints": sources})
            })
            .collect();
        (Value::Object(ups), json!(meta))
    }
}

/// Running time a subtask of `mode` has spent in the Sync unit.
pub(crate) fn sync_time(mode: &str, worked: Duration, phase: Duration) -> Duration {
    match mode {
        "incremental" => worked,
        "all" => worked.saturating_sub(phase * 2),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(source: &str, enable_gtid: bool) -> UpstreamId<'_> {
        UpstreamId { source, mariadb: false, server_id: 7, gtid_mode: true, enable_gtid }
    }

    #[test]
    fn positions_show_like_dm() {
        assert_eq!(Pos::at(12, 3456).show("mysql-bin"), "(mysql-bin.000012, 3456)");
        assert_eq!(parse_file_name("mysql-bin.000010"), Some(("mysql-bin".into(), 10)));
        assert_eq!(parse_file_name("nope"), None);
    }

    #[test]
    fn gtid_containment() {
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let a = GtidSet::parse(&format!("{u}:1-100")).unwrap();
        let b = GtidSet::parse(&format!("{u}:1-50:51-60")).unwrap();
        assert!(a.contains(&b) && !b.contains(&a));
        assert!(GtidSet::parse("0-1-100").unwrap().contains(&GtidSet::parse("0-2-99").unwrap()));
        assert!(GtidSet::parse("x:1-2").is_none());
        assert!(a.contains(&GtidSet::parse("").unwrap()));
    }

    #[test]
    fn purged_files_and_gtids_fail_old_starts() {
        let mut b = Binlogs::new(1);
        b.purge("a", Some("mysql-bin.000010"), None).unwrap();
        assert!(
            b.purged_error(&id("a", false), Pos::at(9, 4), None).unwrap().contains("Could not find first log file")
        );
        assert!(b.purged_error(&id("a", false), Pos::at(10, 4), None).is_none());
        // GTID: derived from the oldest file unless set explicitly.
        assert!(b.purged_error(&id("a", true), Pos::at(9, 4), None).unwrap().contains("purged binary logs"));
        let uuid = b.server_uuid("a");
        b.purge("a", None, Some(&format!("{uuid}:1-10"))).unwrap();
        assert!(b.purged_error(&id("a", true), Pos(0), Some(&format!("{uuid}:1-9"))).is_some());
        assert!(b.purged_error(&id("a", true), Pos(0), Some(&format!("{uuid}:1-10"))).is_none());
    }

    #[test]
    fn a_line_advances_with_sync_time_only() {
        let mut b = Binlogs::new(3);
        let mut ck = SubCkpt::default();
        let args = BTreeMap::new();
        let phase = Duration::from_millis(10);
        let rs = |worked| RunStart {
            id: id("a", false),
            mode: "incremental",
            meta: Some(("mysql-bin.000002".into(), 4, String::new())),
            cli_args: &args,
            cfg_safe_mode: false,
            safe_mode_duration: None,
            worked,
            phase,
        };
        assert_eq!(b.on_run_start(&mut ck, rs(Duration::ZERO)), None);
        assert_eq!(ck.starts[0].from, "source_conf");
        assert_eq!(ck.starts[0].pos, Some(Pos::at(2, 4)));
        let p1 = b.position(&ck, "a", "incremental", Duration::from_millis(100), phase).unwrap();
        assert_eq!(p1, Pos::at(2, 4 + 100 * b.rate("a")));
        // A restart resumes from its own checkpoint.
        b.on_run_start(&mut ck, rs(Duration::from_millis(100)));
        assert_eq!((ck.starts[1].from, ck.starts[1].pos), ("checkpoint", Some(p1)));
        assert_eq!(ck.starts[1].safe_mode.as_ref().unwrap().duration.as_deref(), Some("60s"));
    }
}
