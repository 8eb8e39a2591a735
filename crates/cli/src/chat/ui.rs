//! Drawing an [`App`]: the conversation list on the left, the open conversation on the right,
//! the input line and the status line at the bottom.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};
use session_client::content::DisappearingMode;
use session_client::db::{ConversationState, Direction, Message, MessageState};
use unicode_width::UnicodeWidthChar;

use super::app::{App, Focus, describe_mode};
use super::command::format_remaining;
use crate::resolve;

/// Width of the conversation list, columns.
const LIST_WIDTH: u16 = 28;

/// The help text (keys and commands).
pub const HELP: &[&str] = &[
    "Keys",
    "  Up/Down, Ctrl-P/N   choose a conversation",
    "  Tab                 move focus: list / input",
    "  Enter               send the input line (or run a /command)",
    "  PageUp/PageDown     scroll the messages",
    "  Ctrl-U              clear the input line",
    "  Esc, Ctrl-C         quit (Esc closes this help first)",
    "",
    "Commands",
    "  /new SESSION_ID     write to someone new",
    "  /accept, /decline   answer the selected message request",
    "  /block              block the selected conversation's peer",
    "  /unblock [WHO]      unblock someone (alone: list who is blocked)",
    "  /unsend             unsend our last message here",
    "  /retry              send the failed messages here again",
    "  /disappear off | send DUR | read DUR   (DUR: 30s, 5m, 1h, 1d, 1w)",
    "  /name DISPLAY NAME  set our display name",
    "  /receipts on|off    send read receipts",
    "  /typing on|off      send typing indicators",
    "  /help               show or hide this help",
];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let [main, input, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)])
            .areas(frame.area());
    let [list, pane] = Layout::horizontal([Constraint::Length(LIST_WIDTH), Constraint::Min(10)]).areas(main);
    draw_list(frame, app, list);
    draw_messages(frame, app, pane);
    draw_input(frame, app, input);
    draw_status(frame, app, status);
    if app.help_shown() {
        draw_help(frame, app, pane);
    }
}

fn focused_border(focused: bool) -> Style {
    if focused { Style::new().fg(Color::Cyan) } else { Style::new() }
}

fn draw_list(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let items: Vec<ListItem<'_>> = app
        .entries()
        .iter()
        .map(|e| {
            let mut spans = Vec::new();
            spans.push(if e.unread > 0 {
                Span::styled("● ", Style::new().fg(Color::Yellow))
            } else {
                Span::raw("  ")
            });
            let name_style =
                if e.unread > 0 { Style::new().add_modifier(Modifier::BOLD) } else { Style::new() };
            spans.push(Span::styled(e.label(), name_style));
            if e.unread > 0 {
                spans.push(Span::styled(format!(" ({})", e.unread), Style::new().fg(Color::Yellow)));
            }
            if e.state == ConversationState::Request {
                spans.push(Span::styled(" [request]", Style::new().fg(Color::Magenta)));
            }
            if e.draft {
                spans.push(Span::styled(" [new]", Style::new().fg(Color::DarkGray)));
            }
            if e.disappearing != DisappearingMode::Off {
                spans.push(Span::raw(" ⏱"));
            }
            ListItem::new(Line::from(spans))
        })
        .collect();
    let selected = app.selected().and_then(|p| app.entries().iter().position(|e| e.peer == p));
    let mut state = ListState::default().with_selected(selected);
    let list = List::new(items)
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Conversations ")
                .border_style(focused_border(app.focus() == Focus::List)),
        )
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_messages(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let title = match app.selected_entry() {
        Some(entry) => {
            let mut title = format!(" {} ", entry.label());
            if entry.name.is_some() {
                title.push_str(&format!("({}) ", entry.peer.short()));
            }
            if entry.state == ConversationState::Request {
                title.push_str("· message request: /accept or /decline ");
            }
            if entry.disappearing != DisappearingMode::Off {
                title.push_str(&format!("· ⏱ {} ", describe_mode(entry.disappearing)));
            }
            title
        }
        None => " No conversation (/new SESSION_ID) ".to_owned(),
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width.max(1));
    let height = usize::from(inner.height);
    let mut lines: Vec<Line<'static>> = Vec::new();
    for message in app.messages() {
        lines.extend(wrap(message_spans(app, message), width));
    }
    // Bottom-anchored: the newest line at the bottom, scrolled up by `scroll` lines.
    let max_scroll = lines.len().saturating_sub(height);
    app.set_scroll_limit(max_scroll);
    let scroll = app.scroll().min(max_scroll);
    let end = lines.len() - scroll;
    let start = end.saturating_sub(height);
    let visible: Vec<Line<'static>> = lines[start..end].to_vec();
    frame.render_widget(Paragraph::new(visible), inner);
}

/// The spans of one message: time, author, text, disappearing timer, delivery state.
fn message_spans(app: &App, message: &Message) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(
        format!("{} ", resolve::clock_in(message.sent_ms, app.time_zone())),
        Style::new().fg(Color::DarkGray),
    )];
    let ours = message.direction == Direction::Outgoing || message.author == app.me();
    let author_style = if ours { Style::new().fg(Color::Green) } else { Style::new().fg(Color::Cyan) };
    spans.push(Span::styled(
        format!("{}: ", app.author_name(&message.author)),
        author_style.add_modifier(Modifier::BOLD),
    ));
    match (&message.body, message.deleted) {
        (Some(body), false) => spans.push(Span::raw(body.replace(['\n', '\r'], " "))),
        _ => spans
            .push(Span::styled("(unsent)", Style::new().fg(Color::DarkGray).add_modifier(Modifier::ITALIC))),
    }
    if let Some(at) = message.expires_at_ms {
        spans.push(Span::styled(
            format!(" ⏱{}", format_remaining(at.saturating_sub(app.now_ms()))),
            Style::new().fg(Color::DarkGray),
        ));
    } else if message.disappearing != DisappearingMode::Off {
        spans.push(Span::styled(" ⏱", Style::new().fg(Color::DarkGray)));
    }
    if ours {
        let (mark, style) = match message.state {
            MessageState::Sending => (" sending", Style::new().fg(Color::DarkGray)),
            MessageState::Sent => (" ✓", Style::new().fg(Color::Green)),
            MessageState::Read => (" ✓✓", Style::new().fg(Color::Green)),
            MessageState::Failed => (" ✗ failed", Style::new().fg(Color::Red)),
            MessageState::Received => ("", Style::new()),
        };
        if !mark.is_empty() {
            spans.push(Span::styled(mark, style));
        }
    }
    spans
}

/// Wraps styled spans into lines of at most `width` columns (by character).
fn wrap(spans: Vec<Span<'static>>, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for span in spans {
        let mut chunk = String::new();
        for c in span.content.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width && used > 0 {
                if !chunk.is_empty() {
                    line.push(Span::styled(std::mem::take(&mut chunk), span.style));
                }
                lines.push(Line::from(std::mem::take(&mut line)));
                used = 0;
            }
            chunk.push(c);
            used += w;
        }
        if !chunk.is_empty() {
            line.push(Span::styled(chunk, span.style));
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(Line::from(line));
    }
    lines
}

fn draw_input(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let focused = app.focus() == Focus::Input;
    let title = match app.selected_entry() {
        Some(entry) => format!(" To {} (Enter: send, Tab: list) ", entry.label()),
        None => " Input (/help) ".to_owned(),
    };
    let block = Block::new().borders(Borders::ALL).title(title).border_style(focused_border(focused));
    let inner = block.inner(area);
    // Keep the end of the line (where the cursor is) visible.
    let text = format!("> {}", app.input());
    let width = usize::from(inner.width);
    let mut shown: Vec<char> = text.chars().collect();
    let mut cols: usize = shown.iter().map(|c| c.width().unwrap_or(0)).sum();
    while cols + 1 > width && !shown.is_empty() {
        cols -= shown.remove(0).width().unwrap_or(0);
    }
    let shown: String = shown.into_iter().collect();
    frame.render_widget(Paragraph::new(shown).block(block), area);
    if focused && inner.width > 0 && inner.height > 0 {
        let x = inner
            .x
            .saturating_add(u16::try_from(cols).unwrap_or(u16::MAX))
            .min(inner.right().saturating_sub(1));
        frame.set_cursor_position((x, inner.y));
    }
}

fn draw_status(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let sep = || Span::styled(" │ ", Style::new().fg(Color::DarkGray));
    let mut spans =
        vec![Span::raw(format!(" me {}", app.me().short())), sep(), Span::raw(app.network().to_owned())];
    if app.peer_typing() {
        let who = app.selected_entry().map(|e| e.label()).unwrap_or_default();
        spans.push(sep());
        spans.push(Span::styled(format!("{who} is typing…"), Style::new().fg(Color::Cyan)));
    }
    if let Some(mode) = app.peer_disappearing() {
        spans.push(sep());
        spans.push(Span::raw(format!("peer: ⏱ {}", describe_mode(mode))));
    }
    if let Some(notice) = app.notice() {
        spans.push(sep());
        let style = if notice.error { Style::new().fg(Color::Red) } else { Style::new().fg(Color::Yellow) };
        spans.push(Span::styled(notice.text.clone(), style));
    }
    spans.push(sep());
    spans.push(Span::styled("/help", Style::new().fg(Color::DarkGray)));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(frame: &mut Frame<'_>, app: &App, pane: Rect) {
    let mut lines: Vec<Line<'_>> = HELP.iter().map(|l| Line::raw(*l)).collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw("Your Session ID (give it to people who want to write to you):"));
    lines.push(Line::raw(app.me().to_hex()));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX).min(pane.height);
    let area = Rect { x: pane.x, y: pane.y, width: pane.width, height };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::ALL).title(" Help (Esc closes) ")),
        area,
    );
}
