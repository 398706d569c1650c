"""Real mail servers for the lab: private Postfix instances (and postgrey) in the server namespace.

Each instance has its own config, queue, data and mail directories under the scenario's work
directory and logs through postlogd to its own ``maillog`` file. It never looks anything up
and never relays: the only deliverable domain is ``server.lab.test`` (virtual mailboxes under
the work directory); every other destination goes to the ``discard`` transport.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from labnet import SERVER, Lab, sh

SERVER_NAME = "server.lab.test"
MAILBOXES = ("bob", "carol", "dave", "postmaster")
USERNAME, PASSWORD = "alice", "lab-Secret-42"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {work}/queue
data_directory = {work}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {name}
mydomain = lab.test
myorigin = $myhostname
mydestination =
inet_interfaces = all
inet_protocols = {protocols}
mynetworks = 127.0.0.0/8, 10.77.0.0/16, [::1]/128, [fd77::]/16
relayhost =
default_transport = discard:lab never relays
relay_transport = discard:lab never relays
local_transport = discard:lab has no local delivery
virtual_mailbox_domains = {name}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_mailbox_base = {work}/mail
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
alias_maps =
alias_database =
disable_dns_lookups = yes
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP Postfix (lab)
smtpd_relay_restrictions = reject_unauth_destination
maillog_file = {work}/maillog
maillog_file_prefixes = {work}
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = yes
smtpd_tls_chain_files = {conf}/server.key, {conf}/server.crt
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {conf}/sasl
smtpd_sasl_local_domain = {name}
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = no
"""

# Every service unchrooted, so nothing has to be copied into the queue directory.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def make_certificate(conf: Path) -> None:
    """A self-signed P-256 certificate for server.lab.test."""
    sh(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        f"/CN={SERVER_NAME}",
        "-addext",
        f"subjectAltName=DNS:{SERVER_NAME}",
        "-keyout",
        str(conf / "server.key"),
        "-out",
        str(conf / "server.crt"),
    )
    (conf / "server.key").chmod(0o600)


class Postfix:
    """One private Postfix instance inside the server namespace."""

    def __init__(self, lab: Lab, work: Path, ipv6: bool = False):
        self.lab = lab
        self.work = work
        self.conf = work / "postfix"
        self.main: dict[str, str] = {}
        self.services: list[str] = []
        self.files: dict[str, str] = {}  # extra files (lookup tables) for the config directory
        self.ipv6 = ipv6
        self.proc: subprocess.Popen | None = None

    @property
    def maillog(self) -> Path:
        return self.work / "maillog"

    def service(self, port: int | str, *options: str, name: str = "smtpd") -> None:
        """Add an smtpd listener on ``port`` with ``-o key=value`` overrides."""
        line = f"{port:<9} inet  n       -       n       -       -       {name}"
        for opt in options:
            line += f"\n  -o {opt}"
        self.services.append(line)

    def write_config(self) -> None:
        nobody = pwd.getpwnam("nobody")
        postfix = pwd.getpwnam("postfix")
        self.conf.mkdir(parents=True)
        for sub in ("queue", "data"):
            (self.work / sub).mkdir()
        mail = self.work / "mail"
        mail.mkdir()
        shutil.chown(mail, nobody.pw_uid, nobody.pw_gid)
        shutil.chown(self.work / "data", postfix.pw_uid, postfix.pw_gid)
        text = MAIN_CF.format(
            work=self.work,
            conf=self.conf,
            name=SERVER_NAME,
            protocols="all" if self.ipv6 else "ipv4",
            uid=nobody.pw_uid,
            gid=nobody.pw_gid,
        )
        text += "".join(f"{k} = {v}\n" for k, v in self.main.items())
        (self.conf / "main.cf").write_text(text)
        services = self.services or [
            f"{'smtp':<9} inet  n       -       n       -       -       smtpd"
        ]
        (self.conf / "master.cf").write_text(MASTER_CF + "\n".join(services) + "\n")
        (self.conf / "vmailbox").write_text(
            "".join(f"{box}@{SERVER_NAME} {box}/\n" for box in MAILBOXES)
        )
        for name, content in self.files.items():
            (self.conf / name).write_text(content)
        make_certificate(self.conf)
        self._write_sasl(postfix)

    def _write_sasl(self, postfix: pwd.struct_passwd) -> None:
        """Cyrus SASL with a private sasldb holding the lab's one account."""
        sasl = self.conf / "sasl"
        sasl.mkdir()
        db = self.work / "sasldb2"  # outside the config directory, which must be root's
        (sasl / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
            f"sasldb_path: {db}\n"
        )
        sh("saslpasswd2", "-f", str(db), "-p", "-c", "-u", SERVER_NAME, USERNAME, input=PASSWORD)
        shutil.chown(db, postfix.pw_uid, postfix.pw_gid)
        db.chmod(0o600)

    def start(self) -> None:
        self.write_config()
        self.maillog.touch()
        sh("postfix", "-c", str(self.conf), "check")
        self.proc = self.lab.spawn(
            SERVER,
            ["/usr/lib/postfix/sbin/master", "-c", str(self.conf), "-s"],
            "postfix master",
            start_new_session=True,  # master signals its whole process group on exit
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_log("daemon started")

    def _wait_log(self, needle: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.maillog.read_text(errors="replace"):
                return
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"postfix did not log {needle!r}: {self.maillog.read_text()[-2000:]}")

    def settle(self, timeout: float = 10) -> None:
        """Wait until the queue is empty (deliveries logged), so the maillog is complete."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = self.work / "queue"
            queued = [
                p for d in ("incoming", "active") for p in (queue / d).rglob("*") if p.is_file()
            ]
            if not queued:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc:
            self.lab.stop(self.proc, signal.SIGTERM)
            self.proc = None
            time.sleep(0.3)  # postlogd writes the last lines


class Postgrey:
    """postgrey from Debian, on the server namespace's loopback, with a short delay."""

    def __init__(self, lab: Lab, work: Path, delay: int):
        self.lab, self.work, self.delay = lab, work, delay
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        db = self.work / "postgrey"
        db.mkdir()
        shutil.chown(db, "postgrey", "postgrey")
        self.proc = self.lab.spawn(
            SERVER,
            [
                "postgrey",
                "--inet=127.0.0.1:10023",
                f"--dbdir={db}",
                f"--delay={self.delay}",
                "--user=postgrey",
                "--group=postgrey",
                "--greylist-action=451 4.7.1",
                "--auto-whitelist-clients=0",
                "--greylist-text=Greylisted by the lab, try again in %s seconds",
            ],
            "postgrey",
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=(self.work / "postgrey.log").open("w"),
        )
        time.sleep(2)
        if self.proc.poll() is not None:
            raise RuntimeError((self.work / "postgrey.log").read_text())

    def stop(self) -> None:
        if self.proc:
            self.lab.stop(self.proc)
            self.proc = None


EXIM_ROOT = Path("/tmp/pcapsmtp-lab/exim-pkg")  # Debian's exim4-daemon-light, unpacked
EXIM_UID = 64100  # "Debian-exim", known only inside Exim's private mount namespace

EXIM_CONF = """\
primary_hostname = {name}
domainlist local_domains = {name}
spool_directory = {work}/exim/spool
log_file_path = {work}/exim/log/%slog
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
daemon_smtp_ports = 25
local_interfaces = 0.0.0.0
acl_smtp_rcpt = acl_check_rcpt
tls_advertise_hosts =
log_selector = +smtp_connection +received_recipients +incoming_port
keep_environment =
begin acl
acl_check_rcpt:
  accept domains = +local_domains
         local_parts = {boxes}
  deny   message = 5.1.1 unknown user
begin routers
lab_mailbox:
  driver = accept
  domains = +local_domains
  transport = lab_file
begin transports
lab_file:
  driver = appendfile
  file = {work}/exim/mail/$local_part
  user = Debian-exim
  group = Debian-exim
  delivery_date_add
  envelope_to_add
  return_path_add
begin retry
*  *  F,1h,15m
"""


def unpack_exim() -> Path:
    """Debian's exim4-daemon-light, unpacked privately (the package conflicts with postfix)."""
    binary = EXIM_ROOT / "usr/sbin/exim4"
    if not binary.exists():
        EXIM_ROOT.mkdir(parents=True, exist_ok=True)
        sh("apt-get", "download", "exim4-daemon-light", cwd=str(EXIM_ROOT.parent))
        deb = sorted(EXIM_ROOT.parent.glob("exim4-daemon-light_*.deb"))[-1]
        sh("dpkg-deb", "-x", str(deb), str(EXIM_ROOT))
    return binary


class Exim:
    """Exim 4 from Debian in the server namespace, with its own config, spool and log.

    Its binary insists on the compiled-in user "Debian-exim" and re-executes itself as
    /usr/sbin/exim4. Rather than add a user to this host or install a package that
    conflicts with postfix, it runs in a private mount namespace where /etc/passwd and
    /etc/group have that user and /usr/sbin is the unpacked package's.
    """

    def __init__(self, lab: Lab, work: Path):
        self.lab, self.work = lab, work
        self.proc: subprocess.Popen | None = None

    @property
    def maillog(self) -> Path:
        return self.work / "exim/log/mainlog"

    def start(self) -> None:
        unpack_exim()
        base = self.work / "exim"
        for sub in ("spool", "log", "mail"):
            (base / sub).mkdir(parents=True)
            os.chown(base / sub, EXIM_UID, EXIM_UID)
        passwd = base / "passwd"
        passwd.write_text(
            Path("/etc/passwd").read_text()
            + f"Debian-exim:x:{EXIM_UID}:{EXIM_UID}:Exim (lab):/nonexistent:/usr/sbin/nologin\n"
        )
        group = base / "group"
        group.write_text(Path("/etc/group").read_text() + f"Debian-exim:x:{EXIM_UID}:\n")
        conf = base / "exim.conf"
        boxes = " : ".join(MAILBOXES)
        conf.write_text(EXIM_CONF.format(name=SERVER_NAME, work=self.work, boxes=boxes))
        script = (
            f"mount --bind {passwd} /etc/passwd && mount --bind {group} /etc/group && "
            f"mount --bind {EXIM_ROOT}/usr/sbin /usr/sbin && "
            f"exec /usr/sbin/exim4 -C {conf} -bdf -oX 25"
        )
        self.proc = self.lab.spawn(
            SERVER,
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            "exim",
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=(base / "stderr.log").open("w"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.maillog.exists() and "daemon started" in self.maillog.read_text():
                return
            time.sleep(0.1)
        raise RuntimeError(f"exim did not start: {(base / 'stderr.log').read_text()}")

    def settle(self) -> None:
        time.sleep(1)

    def stop(self) -> None:
        if self.proc:
            self.lab.stop(self.proc)
            self.proc = None
