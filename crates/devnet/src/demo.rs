//! `session-devnet demo`: a guided tour for newcomers. Starts a local network, creates two
//! accounts (Alice and Bob) and walks through a conversation step by step: a message request,
//! replies, read receipts, unsend, and a disappearing message. Each step says in a line or two
//! what happens underneath, and how long it took.
//!
//! The accounts are real `session_client::Client`s, each with its own encrypted database, talking
//! to the network through onion paths exactly as an application would; the demo only drives them
//! (send, poll until the expected thing arrives, show what each side has stored).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use session_client::content::DisappearingMode;
use session_client::db::{ConversationState, Direction, KeySource, Message, MessageId, MessageState};
use session_client::net::{DEFAULT_MIN_POOL_SIZE, ServiceNode};
use session_client::{Client, ClientError, NetworkConfig};
use session_devnet::{Binaries, Devnet, DevnetError, DevnetOptions, NodeEntry, Progress};
use session_protocol::SessionId;

/// Fewest nodes the demo runs on: a 3-hop onion path plus a swarm member, and the client's pool
/// minimum.
pub const MIN_NODES: usize = 5;

/// Shortest disappearing timer: the nodes refuse a TTL under 10 s (as upstream's storage
/// server), and an after-send message is stored with its timer as TTL.
pub const MIN_DISAPPEAR_SECS: u32 = 10;

/// How often a waiting client polls its swarm.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Bound of one wait for a message, receipt or request response to arrive.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);

/// `session-devnet demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 12)]
    pub nodes: usize,
    /// Leave the network (and the directory, with Alice's and Bob's accounts) running at the
    /// end, and print how to use it.
    #[arg(long)]
    pub keep: bool,
    /// Timer of the disappearing message (step 9), seconds (at least 10: the nodes' minimum TTL).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub disappear_secs: u32,
    /// How long to wait for every node to be in a swarm, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    pub ready_timeout: u64,
}

/// A step of the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// `--nodes` is too small.
    #[error("the demo needs at least {MIN_NODES} nodes (a 3-hop onion path plus a swarm), not {0}")]
    TooFewNodes(usize),
    /// `--disappear-secs` below [`MIN_DISAPPEAR_SECS`].
    #[error("--disappear-secs must be at least {MIN_DISAPPEAR_SECS} (the nodes' minimum TTL), not {0}")]
    TimerTooShort(u32),
    /// Starting, inspecting or stopping the network failed.
    #[error("devnet: {0}")]
    Devnet(#[from] DevnetError),
    /// A client operation failed.
    #[error("{what}: {source}")]
    Client {
        /// What the demo was doing.
        what: String,
        /// The client's error.
        #[source]
        source: ClientError,
    },
    /// Something did not arrive in time.
    #[error("timed out after {} s waiting for {what}{}", after.as_secs(), last_error.as_ref().map_or(String::new(), |e| format!(" (last poll error: {e})")))]
    TimedOut {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
        /// The last poll error, if polls failed.
        last_error: Option<String>,
    },
    /// A client ended up in a state the demo did not expect.
    #[error("unexpected state: {0}")]
    Unexpected(String),
    /// A file system operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
}

/// Adds what the demo was doing to a client error.
trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, DemoError>;
}

impl<T> Context<T> for Result<T, ClientError> {
    fn ctx(self, what: &str) -> Result<T, DemoError> {
        self.map_err(|source| DemoError::Client { what: what.to_owned(), source })
    }
}

/// Runs the demo. `binaries` gives the node and registry programs for the chosen directory;
/// `dir`: the network's directory (`None`: a fresh temporary one, deleted at the end unless
/// `--keep`). Stops everything on Ctrl-C / SIGTERM.
pub async fn run(
    args: &DemoArgs,
    dir: Option<PathBuf>,
    binaries: impl FnOnce(&Path) -> Result<Option<Binaries>, DevnetError>,
) -> Result<(), DemoError> {
    use tokio::signal::unix::{SignalKind, signal};
    if args.nodes < MIN_NODES {
        return Err(DemoError::TooFewNodes(args.nodes));
    }
    if args.disappear_secs < MIN_DISAPPEAR_SECS {
        return Err(DemoError::TimerTooShort(args.disappear_secs));
    }
    let io = |what: String| move |source| DemoError::Io { what, source };
    let sig = |kind| signal(kind).map_err(io("installing signal handlers".into()));
    let (mut term, mut int) = (sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?);
    let temporary = dir.is_none();
    let dir = match dir {
        Some(dir) => dir,
        None => {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let dir = std::env::temp_dir().join(format!("session-demo-{}-{nanos:08x}", std::process::id()));
            std::fs::create_dir(&dir).map_err(io(format!("creating {}", dir.display())))?;
            dir
        }
    };
    let mut devnet = None;
    let outcome = match binaries(&dir) {
        Err(e) => Err(e.into()),
        Ok(binaries) => tokio::select! {
            r = steps(args, &dir, binaries, &mut devnet) => r,
            _ = term.recv() => Err(DemoError::Interrupted),
            _ = int.recv() => Err(DemoError::Interrupted),
        },
    };
    // The clients are gone with the steps future; now the network.
    let keep = args.keep && outcome.is_ok();
    if let Some(devnet) = devnet {
        if keep {
            devnet.detach()?;
        } else {
            if outcome.is_err() {
                println!("\nstopping the network");
            }
            if let Err(e) = devnet.down().await {
                println!("warning: stopping the network: {e}");
            }
        }
    }
    if keep {
        print_keep(&dir);
    } else if temporary {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            println!("warning: could not delete {}: {e}", dir.display());
        }
    } else {
        println!("network stopped; its data stays in {}", dir.display());
    }
    outcome
}

/// What to do with a network left running.
fn print_keep(dir: &Path) {
    let d = dir.display();
    println!(
        "\nThe network keeps running (--keep), with Alice's and Bob's accounts in {d}/alice and {d}/bob.
Use it from another shell:
  cargo run -p session-devnet -- status --dir {d}
  cargo run -p session-cli -- --data-dir {d}/alice --network {d} chat  # chat as Alice (Bob: {d}/bob)
  cargo run -p session-client --example echo_bot -- {d}/bot {d}      # a bot that answers every message
  cargo run -p session-devnet -- down --dir {d}                       # stops it (then: rm -r {d})"
    );
}

/// Prints numbered steps with their explanations, notes, outcome and duration.
struct Steps {
    number: usize,
    step_started: Instant,
}

impl Steps {
    fn begin(&mut self, title: &str, explain: &[&str]) {
        self.number += 1;
        println!("\n[{}] {title}", self.number);
        for line in explain {
            println!("    {line}");
        }
        self.step_started = Instant::now();
    }

    fn note(&self, line: &str) {
        println!("    · {line}");
    }

    fn done(&self, outcome: &str) {
        println!("    => {outcome}  ({} ms)", self.step_started.elapsed().as_millis());
    }
}

/// Counts of what the demo did.
#[derive(Debug, Default)]
struct Counts {
    sent: usize,
    received: usize,
    polls: u32,
}

/// Polls `client` (and prunes expired messages) every [`POLL_EVERY`] until `check` gives a
/// value, at most `limit`. A failed poll is retried; its error is reported on timeout. Returns
/// the value and the number of polls.
async fn poll_until<T>(
    client: &Client,
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<Option<T>, DemoError>,
) -> Result<(T, u32), DemoError> {
    let deadline = Instant::now() + limit;
    let mut polls = 0;
    let mut last_error = None;
    loop {
        polls += 1;
        if let Err(e) = client.poll_once().await {
            last_error = Some(e.to_string());
        }
        client.prune_expired().await.ctx("pruning expired messages")?;
        if let Some(value) = check().await? {
            return Ok((value, polls));
        }
        if Instant::now() >= deadline {
            return Err(DemoError::TimedOut { what: what.to_owned(), after: limit, last_error });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// A message as a line of a conversation.
fn line(m: &Message, names: (&str, &str)) -> String {
    let who = if m.direction == Direction::Outgoing { names.0 } else { names.1 };
    let body = match &m.body {
        Some(b) => format!("\"{b}\""),
        None => "(unsent)".into(),
    };
    let state = match m.state {
        MessageState::Sending => "  [sending]",
        MessageState::Sent => "  [sent]",
        MessageState::Failed => "  [failed]",
        MessageState::Read => "  [read]",
        MessageState::Received => "",
    };
    let expires = if m.expires_at_ms.is_some() { "  (disappearing)" } else { "" };
    format!("{who:>5}: {body}{state}{expires}")
}

/// The node indices of `nodes` in the devnet, as `node 3, node 7, …`.
fn node_names(nodes: &[ServiceNode], devnet: &[NodeEntry], sep: &str) -> String {
    nodes
        .iter()
        .map(|n| {
            let key: String = n.ed25519.iter().map(|b| format!("{b:02x}")).collect();
            devnet
                .iter()
                .find(|e| e.pubkey_ed25519 == key)
                .map_or_else(|| format!("node {}…", n.short()), |e| format!("node {}", e.index))
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// The stored message with this protocol id (author and sent time) in `client`'s conversation
/// with `peer`.
async fn find(
    client: &Client,
    peer: &SessionId,
    author: &SessionId,
    sent_ms: u64,
) -> Result<Option<Message>, DemoError> {
    let messages = client.messages(peer, 1000).await.ctx("reading messages")?;
    Ok(messages.into_iter().find(|m| m.author == *author && m.sent_ms == sent_ms))
}

/// Our message `id`, which must exist.
async fn ours(client: &Client, id: MessageId) -> Result<Message, DemoError> {
    client
        .message(id)
        .await
        .ctx("reading a message")?
        .ok_or_else(|| DemoError::Unexpected("a message just sent is not in the database".into()))
}

/// Sends `text` from `from` to `to`; the message must be stored in the recipient's swarm.
async fn send(from: &Client, to: &SessionId, text: &str, counts: &mut Counts) -> Result<Message, DemoError> {
    let id = from.send_text(to, text).await.ctx("sending a message")?;
    counts.sent += 1;
    let message = ours(from, id).await?;
    if message.state != MessageState::Sent {
        return Err(DemoError::Unexpected(format!("a sent message is {:?}, not Sent", message.state)));
    }
    Ok(message)
}

/// `to` polls until it has `message` (sent by `from`); returns its copy and the polls.
async fn receive(
    to: &Client,
    from: &SessionId,
    message: &Message,
    what: &str,
    counts: &mut Counts,
) -> Result<(Message, u32), DemoError> {
    let (copy, polls) =
        poll_until(to, what, ARRIVAL_TIMEOUT, async || find(to, from, from, message.sent_ms).await).await?;
    counts.received += 1;
    counts.polls += polls;
    Ok((copy, polls))
}

/// `reader` reads its conversation with `writer` (sending a read receipt), and `writer` polls
/// until its message `id` is `Read`.
async fn read_and_wait(
    reader: &Client,
    writer: &Client,
    id: MessageId,
    counts: &mut Counts,
) -> Result<u32, DemoError> {
    reader.mark_read(&writer.session_id()).await.ctx("marking messages read")?;
    let (_, polls) = poll_until(writer, "a read receipt", ARRIVAL_TIMEOUT, async || {
        Ok((ours(writer, id).await?.state == MessageState::Read).then_some(()))
    })
    .await?;
    counts.polls += polls;
    Ok(polls)
}

/// A client for `dir` on the devnet.
async fn account(dir: &Path, registry: &str, nodes: usize, name: &str) -> Result<Client, DemoError> {
    let mut config = NetworkConfig::new([registry]);
    config.min_pool_size = nodes.min(DEFAULT_MIN_POOL_SIZE);
    config.request_timeout = Duration::from_secs(20);
    // The recovery phrase is dropped unseen: these are throwaway demo accounts.
    let (client, _phrase) = Client::create(dir, KeySource::KeyFile, config, Some(name))
        .await
        .ctx(&format!("creating {name}'s account"))?;
    let mut settings = client.settings().await.ctx("reading settings")?;
    settings.read_receipts = true;
    client.set_settings(settings).await.ctx("turning read receipts on")?;
    Ok(client)
}

/// Bounds a future by `limit`, as a [`DemoError::TimedOut`].
async fn bounded<T>(
    what: &str,
    limit: Duration,
    f: impl Future<Output = Result<T, DemoError>>,
) -> Result<T, DemoError> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(DemoError::TimedOut { what: what.to_owned(), after: limit, last_error: None })
    })
}

async fn steps(
    args: &DemoArgs,
    dir: &Path,
    binaries: Option<Binaries>,
    slot: &mut Option<Devnet>,
) -> Result<(), DemoError> {
    let started = Instant::now();
    let mut counts = Counts::default();
    let mut s = Steps { number: 0, step_started: started };
    println!("Session demo: a local network, two accounts, one conversation.");

    // 1. The network.
    s.begin(
        &format!("Start a local Session network of {} nodes", args.nodes),
        &[
            "A registry (it keeps the node list and assigns swarms: the blockchain's job upstream) and",
            "the service nodes, each a separate process on its own loopback address 127.0.0.x.",
        ],
    );
    s.note(&format!("directory (data and logs): {}", dir.display()));
    let mut options = DevnetOptions::new(dir, args.nodes);
    options.binaries = binaries;
    options.progress = Progress::Silent;
    options.stop_grace = Duration::from_secs(5);
    let devnet = slot.insert(Devnet::create(options)?);
    devnet.start_all().await?;
    let swarms = devnet.wait_until_ready(Duration::from_secs(args.ready_timeout)).await?;
    let registry = devnet.registry_url()?;
    let nodes = devnet.nodes()?;
    for swarm in &swarms {
        let members = swarm.nodes.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ");
        s.note(&format!("swarm {:016x}: nodes {members}", swarm.id));
    }
    s.done(&format!(
        "network ready: {} nodes in {} swarms, registry at {registry}",
        nodes.len(),
        swarms.len()
    ));

    // 2. Accounts.
    s.begin(
        "Create two accounts, Alice and Bob",
        &[
            "An account is a random seed: it gives a key pair, and the Session ID is 05 + the public key",
            "(X25519). Nobody registers anything: the ID is the address. Each account has its own",
            "encrypted database (SQLCipher) in its own directory.",
        ],
    );
    let alice = account(&dir.join("alice"), &registry, nodes.len(), "Alice").await?;
    let bob = account(&dir.join("bob"), &registry, nodes.len(), "Bob").await?;
    let (a, b) = (alice.session_id(), bob.session_id());
    s.note(&format!("Alice: {a}"));
    s.note(&format!("Bob:   {b}"));
    s.note("a recovery phrase (13 words) restores an account; a real app shows it once (not here)");
    s.note("read receipts: turned on for both (they are off by default)");
    s.done("two accounts created");

    // 3. First message.
    s.begin(
        "Alice sends Bob a message",
        &[
            "It is encrypted for Bob (only his key opens it) and sent through a 3-hop onion path: each hop",
            "peels one layer and knows only its neighbours. The last hop hands it to a node of Bob's swarm.",
        ],
    );
    let first = send(&alice, &b, "Hi Bob! This is Alice.", &mut counts).await?;
    if let Ok(swarm) = alice.network().swarm_of(&b)
        && let Some(id) = swarm.first().map(|n| n.swarm_id)
    {
        s.note(&format!(
            "Bob's swarm is {id:016x} ({}): computed from his Session ID; every member keeps a copy,",
            node_names(&swarm, &nodes, ", ")
        ));
        s.note("still encrypted, for 14 days (its TTL)");
    }
    for path in alice.network().paths() {
        s.note(&format!(
            "one of Alice's onion paths: {} → a member of Bob's swarm",
            node_names(&path, &nodes, " → ")
        ));
    }
    s.note(&format!("Alice sees  {}", line(&first, ("Alice", "Bob"))));
    s.done("stored in Bob's swarm; Alice's copy is sent");

    // 4. Bob polls: a message request.
    s.begin(
        "Bob checks for messages",
        &[
            "Bob's client asks his swarm (through its own onion path) for anything new, decrypts it and",
            "stores it. A first message from someone Bob has not accepted waits in his message requests.",
        ],
    );
    let (copy, polls) = receive(&bob, &a, &first, "Alice's first message at Bob", &mut counts).await?;
    let conversation =
        bob.conversation(&a).await.ctx("reading Bob's conversation")?.ok_or_else(|| {
            DemoError::Unexpected("Bob has a message but no conversation with Alice".into())
        })?;
    if conversation.state != ConversationState::Request {
        return Err(DemoError::Unexpected(format!(
            "Bob's conversation is {:?}, not a request",
            conversation.state
        )));
    }
    let shown = bob.contact(&a).await.ctx("reading a contact")?.and_then(|c| c.display_name);
    s.note(&format!(
        "a message request from \"{}\" ({}): {}",
        shown.as_deref().unwrap_or("?"),
        a.short(),
        copy.body.as_deref().unwrap_or("")
    ));
    s.done(&format!("Bob has Alice's message in his message requests ({polls} polls)"));

    // 5. Bob accepts and reads.
    s.begin(
        "Bob accepts the request and reads the message",
        &[
            "Accepting sends Alice a request response (with Bob's name). Reading sends a read receipt:",
            "a small message to Alice's swarm naming the message by its timestamp.",
        ],
    );
    bob.accept_request(&a).await.ctx("accepting the request")?;
    let (_, polls) = poll_until(&alice, "Bob's acceptance at Alice", ARRIVAL_TIMEOUT, async || {
        Ok(alice.contact(&b).await.ctx("reading a contact")?.filter(|c| c.approved_me).map(|_| ()))
    })
    .await?;
    counts.polls += polls;
    s.note("Alice sees that Bob accepted");
    read_and_wait(&bob, &alice, first.id, &mut counts).await?;
    s.note(&format!("Alice sees  {}", line(&ours(&alice, first.id).await?, ("Alice", "Bob"))));
    s.done("accepted; Alice's first message went sent → read");

    // 6. Bob replies.
    s.begin(
        "Bob replies; Alice receives and reads it",
        &["The same way back: encrypted for Alice, through an onion path, into Alice's swarm."],
    );
    let reply = send(&bob, &a, "Hi Alice! Good to hear from you.", &mut counts).await?;
    s.note(&format!("Bob sees    {}", line(&reply, ("Bob", "Alice"))));
    let (copy, polls) = receive(&alice, &b, &reply, "Bob's reply at Alice", &mut counts).await?;
    s.note(&format!("Alice gets  {}  ({polls} polls)", line(&copy, ("Alice", "Bob"))));
    read_and_wait(&alice, &bob, reply.id, &mut counts).await?;
    s.note(&format!("Bob sees    {}", line(&ours(&bob, reply.id).await?, ("Bob", "Alice"))));
    s.done("Alice received Bob's reply; it went sent → read");

    // 7. A few more.
    s.begin(
        "A few more messages both ways",
        &["Every message is its own encrypted envelope; each side polls its own swarm."],
    );
    for (from, to, text) in [
        (&alice, &bob, "This network runs on your machine?"),
        (&bob, &alice, "Yes: a registry and a dozen nodes on loopback."),
        (&alice, &bob, "And nobody in between can read this."),
    ] {
        let sent = send(from, &to.session_id(), text, &mut counts).await?;
        receive(to, &from.session_id(), &sent, "a message", &mut counts).await?;
        read_and_wait(to, from, sent.id, &mut counts).await?;
    }
    let transcript = alice.messages(&b, 1000).await.ctx("reading messages")?;
    for m in &transcript {
        s.note(&line(m, ("Alice", "Bob")));
    }
    s.done(&format!("{} messages in the conversation, every one read", transcript.len()));

    // 8. Unsend.
    s.begin(
        "Alice unsends a message",
        &[
            "Unsend deletes Alice's copy and sends an unsend request to Bob's swarm; Bob's client removes",
            "the text when it polls. (It cannot make Bob forget what he already read.)",
        ],
    );
    let oops = send(&alice, &b, "Meet me at 5, at the usual place (wrong chat!)", &mut counts).await?;
    let (copy, _) = receive(&bob, &a, &oops, "the message to unsend at Bob", &mut counts).await?;
    s.note(&format!("Bob has     {}", line(&copy, ("Bob", "Alice"))));
    alice.unsend(oops.id).await.ctx("unsending")?;
    let (gone, polls) = poll_until(&bob, "the unsend at Bob", ARRIVAL_TIMEOUT, async || {
        Ok(find(&bob, &a, &a, oops.sent_ms).await?.filter(|m| m.deleted && m.body.is_none()))
    })
    .await?;
    counts.polls += polls;
    s.note(&format!("Bob has     {}", line(&gone, ("Bob", "Alice"))));
    s.note(&format!("Alice has   {}", line(&ours(&alice, oops.id).await?, ("Alice", "Bob"))));
    s.done("unsent: the message shows as (unsent) on Bob's side");

    // 9. Disappearing.
    let secs = args.disappear_secs;
    s.begin(
        &format!("Alice turns on disappearing messages: {secs} s after sending"),
        &[
            "Her new messages carry the timer: both clients delete them when it runs out, and they are",
            "stored in the swarm with a TTL of the timer, so the nodes drop them at the same time.",
        ],
    );
    alice
        .set_disappearing(&b, DisappearingMode::AfterSend { seconds: secs })
        .await
        .ctx("setting the timer")?;
    let ephemeral = send(&alice, &b, "This message self-destructs.", &mut counts).await?;
    let (copy, _) = receive(&bob, &a, &ephemeral, "the disappearing message at Bob", &mut counts).await?;
    s.note(&format!("Bob has     {}", line(&copy, ("Bob", "Alice"))));
    let expires_at = copy.expires_at_ms.unwrap_or(ephemeral.sent_ms + u64::from(secs) * 1000);
    let left = expires_at.saturating_sub(bob.network().network_time_ms());
    s.note(&format!("waiting {:.1} s for it to run out…", left as f64 / 1000.0));
    let limit = Duration::from_secs(u64::from(secs)) + ARRIVAL_TIMEOUT;
    let (_, polls) = poll_until(&bob, "the message to disappear at Bob", limit, async || {
        Ok(find(&bob, &a, &a, ephemeral.sent_ms).await?.is_none().then_some(()))
    })
    .await?;
    counts.polls += polls;
    s.note("gone from Bob's database");
    let (_, polls) = poll_until(&alice, "the message to disappear at Alice", limit, async || {
        Ok(alice.message(ephemeral.id).await.ctx("reading a message")?.is_none().then_some(()))
    })
    .await?;
    counts.polls += polls;
    s.note("gone from Alice's database");
    s.done("the disappearing message is gone on both sides");

    // 10. Summary.
    s.begin("Summary", &[]);
    s.note(&format!(
        "{} messages sent, {} received, {} polls, {} onion requests (Alice {}, Bob {})",
        counts.sent,
        counts.received,
        counts.polls,
        alice.network().stats().onion_requests + bob.network().stats().onion_requests,
        alice.network().stats().onion_requests,
        bob.network().stats().onion_requests
    ));
    s.note(&format!("total time {:.1} s", started.elapsed().as_secs_f64()));
    println!(
        "
How to go on:
  cargo run -p session-devnet -- up                  # a network that stays up (./devnet), until Ctrl-C
  cargo run -p session-client --example echo_bot -- bot-data devnet
                                                     # a bot on it that answers every message
  cargo run -p session-cli -- init --name You        # your own account on it (finds ./devnet) ...
  cargo run -p session-cli -- chat                   # ... and the chat screen (crates/cli/README.md)
  cargo run -p session-devnet -- demo --keep         # this demo, leaving its network running"
    );
    s.done(&format!("demo complete: {} sent, {} received", counts.sent, counts.received));
    bounded("saving the node pools", Duration::from_secs(10), async {
        alice.save_pool().await.ctx("saving Alice's node pool")?;
        bob.save_pool().await.ctx("saving Bob's node pool")
    })
    .await?;
    Ok(())
}
