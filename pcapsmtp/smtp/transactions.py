"""What the commands and replies do to a Session's transactions: MAIL opens one, RCPT adds a
recipient, DATA, BDAT and the end of data carry the message, a reply decides it; a
server-side-only capture's transactions read from the replies; how an unfinished one ended.

``TransactionSteps`` is a base of ``session.SessionBuilder`` and holds no state of its own
(the slots are the builder's); its methods call the builder's ``_other_reply``."""

from __future__ import annotations

from pcapsmtp.smtp import codes, queue_ids
from pcapsmtp.smtp.capped import _grown, _left_out
from pcapsmtp.smtp.events import Command, MessageEnd, Reply, shared_text
from pcapsmtp.smtp.model import LeftOut, Outcome, Recipient, Transaction
from pcapsmtp.smtp.outcome import (
    TIMEOUT_NS,
    abortive_reset,
    class_outcome,
    client_gave_up,
    is_timeout_notice,
    reset_after_own_close,
)
from pcapsmtp.smtp.paths import QUOTED_ADDRESS, parse_path

MAX_TRANSACTIONS = 5_000
MAX_RECIPIENTS = 1_000
"""Recipients kept per transaction; RFC 5321 4.5.3.1.8 asks servers to take at least 100."""


class TransactionSteps:
    """The SessionBuilder's handling of transactions."""

    __slots__ = ()

    def _on_mail(self, command: Command, reply: Reply | None) -> None:
        self._close_open(Outcome.ABANDONED)
        address, params = parse_path(command.argument)
        transaction = Transaction(
            address, command.frame, command.time_ns, params, reply, last_frame=_last(command, reply)
        )
        if reply is not None and not codes.is_positive(reply.code):
            transaction.final, transaction.outcome = reply, class_outcome(reply.code)
        self._add_transaction(transaction)

    def _on_rcpt(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        address, _params = parse_path(command.argument)
        text = reply.text if reply is not None else None
        if len(transaction.rcpt_to) >= MAX_RECIPIENTS:
            if transaction.rcpt_left_out is None:
                transaction.rcpt_left_out = LeftOut("recipients", MAX_RECIPIENTS)
            transaction.rcpt_left_out.add(reply.code if reply is not None else None)
            transaction.last_frame = _last(command, reply)
            return
        transaction.rcpt_to.append(
            Recipient(
                address or command.argument,
                reply.code if reply is not None else None,
                _enhanced(text) if text is not None else None,
                text,
                command.frame,
                reply,
            )
        )
        transaction.last_frame = _last(command, reply)

    def _on_data(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        transaction.method, transaction.data_reply = "DATA", reply
        transaction.last_frame = _last(command, reply)
        if reply is not None and reply.code != 354:
            self._decide(transaction, reply)

    def _on_bdat(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        transaction.method = "BDAT"
        self._attach(transaction, command.message)
        transaction.last_frame = _last(command, reply)
        if reply is not None and (command.bdat_last or not codes.is_positive(reply.code)):
            self._decide(transaction, reply)

    def _on_end_of_data(self, command: Command, reply: Reply | None) -> None:
        transaction = self._open(command)
        # A reply to the end of data implies DATA, also when the DATA is not in the capture.
        transaction.method = transaction.method or "DATA"
        if command.message is None:
            transaction.message_complete = False
            transaction.message_frame = command.frame
        self._attach(transaction, command.message)
        if reply is not None:
            self._decide(transaction, reply)
        else:
            transaction.last_frame = command.frame

    def _attach(self, transaction: Transaction, message: MessageEnd | None) -> None:
        if message is None:
            return
        if message in self._unattached:
            self._unattached.remove(message)
        transaction.size = message.size
        transaction.message = message.facts
        transaction.message_complete = message.complete
        transaction.message_frame = message.frame

    def _on_rset(self, command: Command, reply: Reply | None) -> None:
        self._close_open(Outcome.ABANDONED)

    # -- transactions ----------------------------------------------------------

    def _add_transaction(self, transaction: Transaction) -> None:
        session = self.session
        if len(session.transactions) >= MAX_TRANSACTIONS:
            session.dropped_transactions += 1
            left_out = session.left_out.get("transactions")
            if left_out is None:
                left_out = _left_out(session)["transactions"] = LeftOut(
                    "transactions", MAX_TRANSACTIONS
                )
            left_out.add(transaction.mail_reply.code if transaction.mail_reply else None)
        else:
            _grown(session, "transactions").append(transaction)
        self._current = transaction

    def _open(self, command: Command) -> Transaction:
        """The transaction a command belongs to (one is made for a RCPT/DATA without MAIL)."""
        if self._current is None or self._current.final is not None:
            self._add_transaction(Transaction(None, command.frame, command.time_ns))
        return self._current

    def _decide(self, transaction: Transaction, reply: Reply) -> None:
        transaction.final = reply
        transaction.outcome = class_outcome(reply.code)
        transaction.last_frame = reply.frame
        if transaction.outcome == Outcome.DELIVERED and transaction.method is None:
            transaction.outcome = Outcome.INCOMPLETE
        if codes.is_positive(reply.code):
            transaction.queue_id = queue_ids.queue_id(reply.text)
        self._other_reply(reply.text)

    def _close_open(self, outcome: Outcome) -> None:
        transaction = self._current
        if transaction is not None and transaction.final is None:
            if transaction.message_frame is not None:
                outcome = Outcome.INCOMPLETE  # sent to its end; the answer is not in the capture
            transaction.outcome = self._refused_recipients(transaction) or outcome
        self._current = None

    @staticmethod
    def _refused_recipients(transaction: Transaction) -> Outcome | None:
        """A transaction whose every recipient was refused ended there, whatever came next;
        its deciding reply is the last refusal."""
        refused = [r for r in transaction.rcpt_to if r.code is not None]
        left_out = transaction.rcpt_left_out.codes if transaction.rcpt_left_out else {}
        if not refused or any(codes.is_positive(r.code) for r in refused):
            return None
        if any(code is not None and codes.is_positive(code) for code in left_out):
            return None
        transaction.final = refused[-1].reply
        if any(codes.is_transient(r.code) for r in refused):
            return Outcome.DEFERRED
        return Outcome.REJECTED

    def _server_side_transactions(self) -> None:
        """Only the server's replies are captured: what each can answer tells the envelope's
        steps (RFC 3463 X.1.Y subjects: 0, 7, 8 the sender, the others a recipient), a 354 a
        DATA, and the reply after it answers the message (RFC 5321 4.3.2). So the outcome of
        each step is known; the addresses only where the reply quotes them."""
        before = None
        for reply in self.session.unsolicited:
            enhanced = codes.parse_enhanced(reply.lines[0] if reply.lines else "") or ""
            subject = enhanced[4:] if enhanced[1:4] == ".1." else None
            if before is not None and before.code == 354 and reply.code != 421:
                self._decide(self._current, reply)
            elif reply.code == 354:
                transaction = self._server_side_open(reply)
                transaction.method, transaction.data_reply = "DATA", reply
            elif subject in ("0", "7", "8"):
                self._close_open(Outcome.ABANDONED)
                transaction = self._server_side_open(reply)
                transaction.mail_reply = reply
                if not codes.is_positive(reply.code):
                    transaction.final, transaction.outcome = reply, class_outcome(reply.code)
            elif subject is not None:
                transaction = self._server_side_open(reply)
                quoted = QUOTED_ADDRESS.search(reply.text)
                transaction.rcpt_to.append(
                    Recipient(
                        quoted.group(1) if quoted else "",
                        reply.code,
                        enhanced,
                        reply.text,
                        reply.frame,
                        reply,
                    )
                )
                transaction.last_frame = reply.frame
            before = reply

    def _server_side_open(self, reply: Reply) -> Transaction:
        current = self._current
        if current is None or current.final is not None or current.method is not None:
            self._close_open(Outcome.ABANDONED)
            self._add_transaction(Transaction(None, reply.frame, reply.time_ns))
        self._current.last_frame = reply.frame
        return self._current

    def _unfinished_outcome(self) -> Outcome:
        flow = self.session.flow
        closing = [r for r in self.session.unsolicited if r.code == 421]
        if closing:
            return Outcome.TIMEOUT if is_timeout_notice(closing[0]) else Outcome.DEFERRED
        if self.session.one_sided:
            # the other side's packets, which would tell, are not captured
            return Outcome.INCOMPLETE
        quit_ = self.session.quit
        if quit_ is not None and quit_.reply is not None:
            # Replies come in order: the server answered QUIT, so it had answered this
            # transaction too, in bytes the capture lost. What ended the connection after
            # that (a RST after the client's FIN) did not cut the mail.
            return Outcome.INCOMPLETE
        if client_gave_up(flow) is not None:
            return Outcome.TIMEOUT
        if abortive_reset(flow) or reset_after_own_close(flow):
            return Outcome.RESET
        waiting = [c for c in self.session.commands if c.reply is None]
        if waiting and flow.last_time_ns - waiting[0].time_ns >= TIMEOUT_NS:
            return Outcome.TIMEOUT
        return Outcome.INCOMPLETE


def _last(command: Command, reply: Reply | None) -> int:
    return reply.frame if reply is not None else command.frame


def _enhanced(text: str) -> str | None:
    """The reply's enhanced code, one string for each code ("2.1.5" in every recipient's
    reply of a held session would be a copy of its own otherwise)."""
    found = codes.parse_enhanced(text)
    return found if found is None else shared_text(found)
