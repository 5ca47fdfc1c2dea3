//! A wire fuzzer: random and mutated protocol traffic against one real
//! server, which must survive all of it.
//!
//! Each case opens a connection and sends a startup packet (sometimes
//! mutated) and a script of frontend messages (Query, Parse, Bind with
//! random parameters and format codes, Describe, Execute with edge row
//! limits, Close, Sync, Flush, COPY messages, unknown types), then mutates
//! the bytes: flipped bytes, lengths and counts set to edge values,
//! truncation, inserted garbage. It then closes its side and reads until
//! the server closes. After every batch a fresh connection must answer a
//! query, and the rows written before the run must all still be there.
//!
//! `SHARDFORGE_FUZZ_CASES` (default [`DEFAULT_CASES`]) and
//! `SHARDFORGE_FUZZ_SEED` choose the run; a failing case is reproduced with
//! the same seed. The long run is described in `tests/README.md`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::bad_input::{message, startup_packet};
use crate::harness::{query_i64, TestServer};
use crate::wire_bounds::{bind, execute, parse, sync};

/// Cases in a default run (CI).
const DEFAULT_CASES: u64 = 10_000;
/// Cases between two checks that the server still serves.
const BATCH: u64 = 250;
/// Connections in flight at once.
const PARALLEL: u64 = 4;
/// How long the server may take to close a connection whose client has
/// sent everything and closed its side. A real hang, not a slow answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(20);

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Up to `max` random bytes.
    fn junk(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const SQL: &[&str] = &[
    "SELECT 1",
    "SELECT $1::integer",
    "SELECT $1::text, $2::bigint",
    "SELECT * FROM fuzz_keep ORDER BY id",
    "SELECT v FROM fuzz_keep WHERE id = $1",
    "INSERT INTO fuzz_scratch VALUES ($1, $2)",
    "UPDATE fuzz_scratch SET v = $1 WHERE id = $2",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "",
    ";",
    "SELECT 'a' || $1",
    "SELECT $1::numeric(30,10) * 2",
    "SELECT $1::bytea",
    "SELEC garbage",
];

const EDGE_I32: &[i32] = &[
    0,
    1,
    -1,
    3,
    4,
    5,
    i32::MAX,
    i32::MIN,
    0x7fff,
    65_535,
    1 << 24,
];
const EDGE_I16: &[i16] = &[0, 1, 2, -1, i16::MAX, i16::MIN, 255];
const TYPES: &[u32] = &[
    0, 16, 17, 20, 21, 23, 25, 700, 701, 1043, 1082, 1114, 1700, 9_999_999,
];

/// A whole extended-query round as drivers send it (Parse, Bind with as
/// many text parameters as the statement has, Describe, Execute with an
/// edge row limit, Sync), which mutation then bends.
fn extended_round(rng: &mut Rng) -> Vec<u8> {
    let sql = *rng.pick(SQL);
    let params = (1..=3).filter(|i| sql.contains(&format!("${i}"))).count();
    let values: Vec<Option<&[u8]>> = (0..params).map(|_| Some(&b"3"[..])).collect();
    let mut describe = b"P".to_vec();
    describe.push(0);
    [
        parse("", sql, &[]),
        bind("", "", &values, &[]),
        message(b'D', &describe),
        execute("", *rng.pick(EDGE_I32)),
        sync(),
    ]
    .concat()
}

fn random_message(rng: &mut Rng) -> Vec<u8> {
    let name = |rng: &mut Rng| {
        if rng.below(3) == 0 {
            "n".to_string()
        } else {
            String::new()
        }
    };
    if rng.below(3) == 0 {
        return extended_round(rng);
    }
    match rng.below(13) {
        0 => {
            let mut body = (*rng.pick(SQL)).as_bytes().to_vec();
            body.push(0);
            message(b'Q', &body)
        }
        1 | 2 => {
            let types: Vec<u32> = (0..rng.below(3)).map(|_| *rng.pick(TYPES)).collect();
            let sql = *rng.pick(SQL);
            parse(&name(rng), sql, &types)
        }
        3 | 4 => {
            let params: Vec<Option<Vec<u8>>> = (0..rng.below(3))
                .map(|_| match rng.below(4) {
                    0 => None,
                    1 => Some(b"42".to_vec()),
                    2 => Some(7i32.to_be_bytes().to_vec()),
                    _ => Some(rng.junk(12)),
                })
                .collect();
            let params: Vec<Option<&[u8]>> = params.iter().map(|p| p.as_deref()).collect();
            let formats: Vec<i16> = (0..rng.below(3))
                .map(|_| *rng.pick(&[0i16, 1, 1, 2, -1]))
                .collect();
            let mut b = bind(&name(rng), &name(rng), &params, &formats);
            if rng.below(3) == 0 {
                // Binary parameters: the format list right after the names.
                let at = b.iter().skip(5).position(|&x| x == 0).unwrap() + 6;
                let at = at + b[at..].iter().position(|&x| x == 0).unwrap() + 1;
                b.splice(at..at + 2, [0, 1, 0, 1]);
                let len = (b.len() - 1) as i32;
                b[1..5].copy_from_slice(&len.to_be_bytes());
            }
            b
        }
        5 | 6 => execute(&name(rng), *rng.pick(EDGE_I32)),
        7 => {
            let mut body = vec![*rng.pick(b"SPX")];
            body.extend(name(rng).as_bytes());
            body.push(0);
            message(b'D', &body)
        }
        8 => {
            let mut body = vec![*rng.pick(b"SPX")];
            body.extend(name(rng).as_bytes());
            body.push(0);
            message(b'C', &body)
        }
        9 => sync(),
        10 => message(*rng.pick(b"HdcfX"), &rng.junk(8)),
        11 => message(rng.next() as u8, &rng.junk(16)),
        _ => message(b'S', b""),
    }
}

/// Offsets of the length words of the messages in `script` (which starts
/// with a startup packet of `startup_len` bytes).
fn length_offsets(script: &[u8], startup_len: usize) -> Vec<usize> {
    let mut offsets = vec![0];
    let mut at = startup_len;
    while at + 5 <= script.len() {
        offsets.push(at + 1);
        let len = i32::from_be_bytes(script[at + 1..at + 5].try_into().unwrap());
        if len < 4 {
            break;
        }
        at += 1 + len as usize;
    }
    offsets
}

fn mutate(rng: &mut Rng, script: &mut Vec<u8>, startup_len: usize) {
    for _ in 0..rng.below(4) {
        if script.is_empty() {
            return;
        }
        let at = rng.below(script.len() as u64) as usize;
        match rng.below(7) {
            0 => script[at] ^= 1 << rng.below(8),
            1 => script[at] = rng.next() as u8,
            2 => {
                let offsets = length_offsets(script, startup_len);
                let at = *rng.pick(&offsets);
                if at + 4 <= script.len() {
                    script[at..at + 4].copy_from_slice(&rng.pick(EDGE_I32).to_be_bytes());
                }
            }
            3 if at + 2 <= script.len() => {
                script[at..at + 2].copy_from_slice(&rng.pick(EDGE_I16).to_be_bytes());
            }
            4 => script.truncate(at),
            5 => {
                let junk = rng.junk(32);
                script.splice(at..at, junk);
            }
            _ => {}
        }
    }
}

/// What the server answered one case, to show the run reached past the
/// startup packet.
#[derive(Default, Clone, Copy)]
struct Reach {
    authenticated: u64,
    got_rows: u64,
}

/// One case: its bytes, sent whole, then the connection drained until the
/// server closes it. Err when the server neither answered nor closed.
fn run_case(port: u16, seed: u64) -> Result<Reach, String> {
    let mut rng = Rng::new(seed);
    let mut script = if rng.below(20) == 0 {
        rng.junk(64)
    } else {
        startup_packet()
    };
    let startup_len = script.len();
    for _ in 0..rng.below(8) + 1 {
        script.extend(random_message(&mut rng));
    }
    if rng.below(5) != 0 {
        mutate(&mut rng, &mut script, startup_len);
    }
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(CLOSE_TIMEOUT)).unwrap();
    // The server may close first (a fatal error): a failed write is fine.
    let _ = stream.write_all(&script);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n.min(4096usize.saturating_sub(answer.len()))])
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return Err(format!(
                    "seed {seed}: the server did not close within {CLOSE_TIMEOUT:?}"
                ))
            }
            Err(_) => break, // reset: closed
        }
    }
    let authenticated = answer.starts_with(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]);
    Ok(Reach {
        authenticated: authenticated as u64,
        got_rows: (authenticated && answer.windows(2).any(|w| w == [b'D', 0])) as u64,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_wire_traffic_never_takes_the_node_down() {
    let cases: u64 = std::env::var("SHARDFORGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("SHARDFORGE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_f022);
    let server = TestServer::start().await;
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE fuzz_keep (id integer PRIMARY KEY, v text);
             INSERT INTO fuzz_keep VALUES (1, 'one'), (2, 'two'), (3, 'three');
             CREATE TABLE fuzz_scratch (id integer PRIMARY KEY, v text)",
        )
        .await
        .unwrap();
    let port = server.pg_port;
    let mut done = 0;
    let mut reach = Reach::default();
    while done < cases {
        let batch = BATCH.min(cases - done);
        let results = tokio::task::spawn_blocking(move || {
            let workers: Vec<_> = (0..PARALLEL)
                .map(|w| {
                    std::thread::spawn(move || {
                        (0..batch)
                            .filter(|i| i % PARALLEL == w)
                            .map(|i| run_case(port, seed.wrapping_add(done + i)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} cases failed after {done} cases, first: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        for r in results.iter().flatten() {
            reach.authenticated += r.authenticated;
            reach.got_rows += r.got_rows;
        }
        done += batch;
        let probe = server.connect().await;
        assert_eq!(
            query_i64(&probe, "SELECT 1::bigint").await,
            1,
            "after {done} cases"
        );
    }
    let kept = query_i64(
        &client,
        "SELECT count(*) FROM fuzz_keep WHERE v IN ('one', 'two', 'three')",
    )
    .await;
    assert_eq!(kept, 3, "the rows written before the run");
    println!(
        "wire fuzz: {cases} cases from seed {seed}: {} past startup, {} got rows; server peak memory {} MiB",
        reach.authenticated,
        reach.got_rows,
        server.peak_memory_kib() / 1024
    );
    // Most cases must reach the message loop, and some run statements:
    // a fuzzer stopped at the door proves nothing.
    assert!(
        reach.authenticated * 2 > cases,
        "only {} of {cases} past startup",
        reach.authenticated
    );
    assert!(
        reach.got_rows * 20 > cases,
        "only {} of {cases} got rows",
        reach.got_rows
    );
}
