// SPDX-License-Identifier: GPL-2.0
//
// The test runner: command line, one forked child per test with a timeout,
// TAP 13 output. See test.h for the interface.
#include "test.h"

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace kvmpp::test {
namespace {

// The harness feeds stdout line by line into /dev/kmsg, whose records are
// limited to about 1 KiB: longer diagnostics are split.
constexpr size_t kMaxLineChars = 880;

// How long a test process killed for its timeout may take to disappear.
constexpr long kKillGraceMs = 10000;

// What a test process tells the runner, through memory shared across fork().
struct Report {
	enum Outcome : int { kRunning, kPassed, kFailed, kSkipped };
	Outcome outcome;
	char skip_reason[400];
};

Report *g_report;       // shared with the running test's process
bool g_in_test = false; // true in a test process, false in the runner
std::vector<std::function<void()> *> g_cleanups;
std::vector<std::string> g_contexts; // innermost last

// Prints one TAP line to the real stdout and flushes it.
void tap_line(std::string_view text)
{
	std::fwrite(text.data(), 1, text.size(), stdout);
	std::fputc('\n', stdout);
	std::fflush(stdout);
}

// Prints text as "# " diagnostic lines: one per input line, long ones split.
void tap_comment(std::string_view text)
{
	do {
		size_t end = text.find('\n');
		std::string_view line = text.substr(0, end);
		do {
			tap_line("# " + std::string(line.substr(0, kMaxLineChars)));
			line.remove_prefix(std::min(line.size(), kMaxLineChars));
		} while (!line.empty());
		text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
	} while (!text.empty());
}

std::string vformat(const char *fmt, va_list args)
{
	va_list copy;
	va_copy(copy, args);
	int size = std::vsnprintf(nullptr, 0, fmt, copy);
	va_end(copy);
	std::string text(size > 0 ? size : 0, '\0');
	std::vsnprintf(text.data(), text.size() + 1, fmt, args);
	return text;
}

void run_cleanups()
{
	// Popped before being called: a cleanup whose own assertion fails ends up
	// in fail() again, which goes on with the ones below it.
	while (!g_cleanups.empty()) {
		std::function<void()> *cleanup = g_cleanups.back();
		g_cleanups.pop_back();
		(*cleanup)();
	}
}

[[noreturn]] void end_test(Report::Outcome outcome, int status)
{
	if (!g_in_test) {
		// An assertion in before_all/after_all: the runner cannot go on.
		tap_line("Bail out! assertion failed outside a test (see above)");
		std::exit(2);
	}
	run_cleanups();
	// Only the first verdict counts (a failing cleanup after a skip fails).
	if (g_report->outcome == Report::kRunning || outcome == Report::kFailed)
		g_report->outcome = outcome;
	std::fflush(stdout);
	std::fflush(stderr);
	_exit(status);
}

// Collects a test's output and relays it to the TAP stream line by line.
class OutputRelay {
public:
	void feed(const char *data, size_t size)
	{
		pending_.append(data, size);
		size_t newline;
		while ((newline = pending_.find('\n')) != std::string::npos) {
			tap_comment(std::string_view(pending_).substr(0, newline));
			pending_.erase(0, newline + 1);
		}
	}
	void finish()
	{
		if (!pending_.empty())
			tap_comment(pending_);
		pending_.clear();
	}

private:
	std::string pending_;
};

long now_ms()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

std::string signal_name(int sig)
{
	const char *abbrev = sigabbrev_np(sig);
	std::string name = abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
	const char *text = sigdescr_np(sig);
	return text ? name + " (" + text + ")" : name;
}

// Runs in the forked test process; never returns.
// Asks /dev/kvm (a hypervisor without it has no vCPUs either).
bool hypervisor_offers_vcpus()
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return false;
	int max_vcpus = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	close(kvm);
	return max_vcpus > 0;
}

[[noreturn]] void run_in_child(const TestCase &test, int output_fd)
{
	g_in_test = true;
	setpgid(0, 0); // own process group: a timeout kills anything it spawned
	dup2(output_fd, STDOUT_FILENO);
	dup2(output_fd, STDERR_FILENO);
	close(output_fd);
	std::setvbuf(stdout, nullptr, _IOLBF, 0);
	if (test.options.needs_vcpus && !hypervisor_offers_vcpus())
		skip("this hypervisor offers no vCPUs (KVM_CAP_MAX_VCPUS is 0)");
	try {
		test.body();
	} catch (const std::exception &e) {
		note("uncaught exception: %s", e.what());
		end_test(Report::kFailed, 1);
	} catch (...) {
		note("uncaught exception of unknown type");
		end_test(Report::kFailed, 1);
	}
	end_test(Report::kPassed, 0);
}

enum class Result { kPass, kFail, kSkip };

// Forks, runs one test with its timeout and relays its output. Returns the
// verdict after printing every diagnostic line (but not the result line).
Result run_one(const TestCase &test, std::string &skip_reason)
{
	*g_report = Report{Report::kRunning, {}};
	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
		tap_comment("runner: pipe2 failed: " + errno_name(errno));
		return Result::kFail;
	}
	std::fflush(stdout);
	std::fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		tap_comment("runner: fork failed: " + errno_name(errno));
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return Result::kFail;
	}
	if (pid == 0) {
		close(pipe_fds[0]);
		run_in_child(test, pipe_fds[1]);
	}
	close(pipe_fds[1]);
	setpgid(pid, pid); // also done by the child; whichever runs first wins

	// A pidfd becomes readable when the test process exits, even if something
	// it spawned still holds the output pipe open.
	int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
	if (pidfd < 0) {
		tap_comment("runner: pidfd_open failed: " + errno_name(errno));
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
		close(pipe_fds[0]);
		return Result::kFail;
	}

	OutputRelay relay;
	long deadline = now_ms() + test.options.timeout_s * 1000L;
	bool timed_out = false;
	bool exited = false;
	bool output_open = true;
	char buffer[4096];
	while (!exited) {
		pollfd fds[2] = {{pidfd, POLLIN, 0}, {pipe_fds[0], POLLIN, 0}};
		long remaining = std::max(0L, deadline - now_ms());
		int ready = poll(fds, output_open ? 2 : 1, static_cast<int>(remaining));
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			tap_comment("runner: poll failed: " + errno_name(errno));
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, nullptr, 0);
			close(pidfd);
			close(pipe_fds[0]);
			return Result::kFail;
		}
		if (ready == 0) {
			if (timed_out)
				break; // SIGKILL did not end it within the grace period
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			deadline = now_ms() + kKillGraceMs;
			continue;
		}
		if (output_open && (fds[1].revents & (POLLIN | POLLHUP))) {
			ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
			if (n > 0)
				relay.feed(buffer, n);
			else if (n == 0)
				output_open = false;
		}
		exited = fds[0].revents & POLLIN;
	}
	close(pidfd);
	if (!exited) {
		// Killed but still not gone: blocked in the kernel. Leave it behind.
		relay.finish();
		close(pipe_fds[0]);
		tap_comment("timed out after " + std::to_string(test.options.timeout_s) +
			    " s, and the test process did not die within " +
			    std::to_string(kKillGraceMs / 1000) +
			    " s of SIGKILL (stuck in the kernel?)");
		return Result::kFail;
	}
	int status = 0;
	waitpid(pid, &status, 0);
	// Whatever the test wrote before it ended is in the pipe now.
	fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
	ssize_t n;
	while (output_open && (n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0)
		relay.feed(buffer, n);
	relay.finish();
	close(pipe_fds[0]);
	kill(-pid, SIGKILL); // leftovers the test spawned, if any

	if (timed_out) {
		tap_comment("timed out after " + std::to_string(test.options.timeout_s) +
			    " s: test process killed");
		return Result::kFail;
	}
	if (WIFSIGNALED(status)) {
		tap_comment("test process killed by " + signal_name(WTERMSIG(status)));
		return Result::kFail;
	}
	const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	switch (g_report->outcome) {
	case Report::kPassed:
		if (code == 0)
			return Result::kPass;
		break;
	case Report::kSkipped:
		skip_reason.assign(g_report->skip_reason,
				   strnlen(g_report->skip_reason, sizeof(g_report->skip_reason)));
		return Result::kSkip;
	case Report::kFailed:
		return Result::kFail;
	case Report::kRunning:
		tap_comment("test process exited with status " + std::to_string(code) +
			    " before the test finished");
		return Result::kFail;
	}
	tap_comment("test process exited with status " + std::to_string(code));
	return Result::kFail;
}

void print_usage(FILE *out, const Suite &suite)
{
	std::fprintf(out,
		     "usage: %s [--list] [--filter PATTERNS] [--repeat N] [--help]\n"
		     "%s\n"
		     "\n"
		     "  --list              print the ids (group.name) of the selected tests\n"
		     "  --filter PATTERNS   run only tests whose id matches one of the\n"
		     "                      comma-separated fnmatch globs, e.g.\n"
		     "                      'system.*,vm.create*' (may be repeated)\n"
		     "  --repeat N          run the selected tests N times over (to find\n"
		     "                      rare failures); each run is a TAP line of its own\n"
		     "  --help              show this help\n"
		     "\n"
		     "Runs each test in its own process with a timeout and prints TAP 13.\n"
		     "Exit status: 0 if no test failed, 1 if one did, 2 on a usage error.\n",
		     suite.program, suite.description);
}

// A count for --repeat: 1 to 10000.
bool parse_repeat(const char *text, long &count)
{
	char *end;
	errno = 0;
	const long value = std::strtol(text, &end, 10);
	if (errno || end == text || *end || value < 1 || value > 10000)
		return false;
	count = value;
	return true;
}

bool matches(const std::string &id, const std::vector<std::string> &patterns)
{
	if (patterns.empty())
		return true;
	for (const std::string &pattern : patterns)
		if (fnmatch(pattern.c_str(), id.c_str(), 0) == 0)
			return true;
	return false;
}

void add_patterns(std::string_view list, std::vector<std::string> &patterns)
{
	while (!list.empty()) {
		size_t comma = list.find(',');
		std::string_view pattern = list.substr(0, comma);
		if (!pattern.empty())
			patterns.emplace_back(pattern);
		list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
	}
}

} // namespace

std::vector<TestCase> &registry()
{
	static std::vector<TestCase> tests;
	return tests;
}

Registrar::Registrar(const char *group, const char *name, void (*body)(), Options options,
		     const char *file, int line)
{
	registry().push_back({std::string(group) + "." + name, body, options, file, line});
}

void note(const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	std::string text = vformat(fmt, args);
	va_end(args);
	if (g_in_test) {
		// Captured by the runner, which adds the "# ".
		std::fputs(text.c_str(), stdout);
		std::fputc('\n', stdout);
		std::fflush(stdout);
	} else {
		tap_comment(text);
	}
}

void skip(const std::string &reason)
{
	std::snprintf(g_report->skip_reason, sizeof(g_report->skip_reason), "%s",
		      reason.c_str());
	end_test(Report::kSkipped, 0);
}

void fail()
{
	end_test(Report::kFailed, 1);
}

Cleanup::Cleanup(std::function<void()> fn) : fn_(std::move(fn))
{
	g_cleanups.push_back(&fn_);
}

Cleanup::~Cleanup()
{
	// Not on the stack any more if fail() already ran it.
	for (auto it = g_cleanups.begin(); it != g_cleanups.end(); ++it) {
		if (*it == &fn_) {
			g_cleanups.erase(it);
			fn_();
			return;
		}
	}
}

Context::Context(const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	g_contexts.push_back(vformat(fmt, args));
	va_end(args);
}

Context::~Context()
{
	g_contexts.pop_back();
}

std::string errno_name(int err)
{
	if (err == 0)
		return "0 (no error)";
	const char *name = strerrorname_np(err);
	return name ? name : "errno " + std::to_string(err);
}

namespace detail {

void assertion_failed(const char *file, int line, const std::string &what,
		      const std::vector<std::string> &details)
{
	note("%s:%d: %s failed", file, line, what.c_str());
	for (const std::string &detail : details)
		note("  %s", detail.c_str());
	for (auto it = g_contexts.rbegin(); it != g_contexts.rend(); ++it)
		note("  while: %s", it->c_str());
	fail();
}

} // namespace detail

int run(int argc, char **argv, const Suite &suite)
{
	bool list_only = false;
	std::vector<std::string> patterns;
	long repeat = 1;
	for (int i = 1; i < argc; i++) {
		std::string_view arg = argv[i];
		if (arg == "--help" || arg == "-h") {
			print_usage(stdout, suite);
			return 0;
		} else if (arg == "--list") {
			list_only = true;
		} else if (arg == "--filter" && i + 1 < argc) {
			add_patterns(argv[++i], patterns);
		} else if (arg.starts_with("--filter=")) {
			add_patterns(arg.substr(std::strlen("--filter=")), patterns);
		} else if (arg == "--repeat" && i + 1 < argc && parse_repeat(argv[i + 1], repeat)) {
			i++;
		} else {
			std::fprintf(stderr, "%s: %s '%s'\n", suite.program,
				     arg == "--filter"   ? "missing PATTERNS after"
				     : arg == "--repeat" ? "missing or bad count after"
							 : "unknown option",
				     argv[i]);
			print_usage(stderr, suite);
			return 2;
		}
	}

	std::vector<const TestCase *> selected;
	for (long round = 0; round < repeat; round++)
		for (const TestCase &test : registry())
			if (matches(test.id, patterns))
				selected.push_back(&test);
	if (list_only) {
		for (const TestCase *test : selected)
			std::printf("%s\n", test->id.c_str());
		return 0;
	}

	if (suite.before_all) {
		int status = suite.before_all();
		if (status != 0)
			return status;
	}

	void *shared = mmap(nullptr, sizeof(Report), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED) {
		std::fprintf(stderr, "%s: mmap: %s\n", suite.program, errno_name(errno).c_str());
		return 2;
	}
	g_report = static_cast<Report *>(shared);

	tap_line("TAP version 13");
	tap_line("1.." + std::to_string(selected.size()));
	// The harness runs several programs with one filter, so matching nothing here
	// is normal; it fails a run in which no program ran any test (a typo).
	if (selected.empty())
		tap_line("# no test of " + std::string(suite.program) + " matches the filter");
	int passed = 0, failed = 0, skipped = 0;
	for (size_t i = 0; i < selected.size(); i++) {
		const TestCase &test = *selected[i];
		std::string skip_reason;
		Result result = run_one(test, skip_reason);
		std::string number = std::to_string(i + 1);
		switch (result) {
		case Result::kPass:
			passed++;
			tap_line("ok " + number + " - " + test.id);
			break;
		case Result::kFail:
			failed++;
			tap_line("not ok " + number + " - " + test.id);
			break;
		case Result::kSkip:
			skipped++;
			for (char &c : skip_reason)
				if (c == '\n' || c == '#')
					c = ' ';
			tap_line("ok " + number + " - " + test.id + " # SKIP " + skip_reason);
			break;
		}
	}
	if (suite.after_all)
		suite.after_all();
	tap_line("# " + std::to_string(passed) + " passed, " + std::to_string(failed) +
		 " failed, " + std::to_string(skipped) + " skipped");
	return failed == 0 ? 0 : 1;
}

} // namespace kvmpp::test
