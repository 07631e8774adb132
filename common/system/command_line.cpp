#include "system/command_line.h"

#include <cstdio>
#include <iostream>

#include "system/log.h"
#include "system/version.h"

namespace bpfchain::cli {
namespace {

// "usage: <program> [OPTIONS] ..." first, then the binary's synopsis, then CLI11's lists.
class Formatter : public CLI::Formatter {
public:
  std::string make_description(const CLI::App*) const override { return {}; }
  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string usage = CLI::Formatter::make_usage(app, std::move(name));
    std::string synopsis = app->get_description();
    if (!synopsis.empty() && synopsis.back() != '\n')
      synopsis += '\n';
    return usage + synopsis;
  }
};

// What a value-taking flag in `args` is called, without an inline "=value".
std::string flagName(const std::string& arg) {
  return arg.substr(0, arg.find('='));
}

// The first argument no option or subcommand took, as a usage message; "" when none.
std::string extrasOf(const CLI::App& app) {
  for (const std::string& arg : app.remaining(false)) {
    if (arg == "--")
      continue;
    if (arg.size() > 1 && arg[0] == '-')
      return "unknown option " + flagName(arg);
    if (app.get_require_subcommand_min() > 0 && app.get_subcommands().empty())
      return "unknown command " + arg;
    return "unexpected argument " + arg;
  }
  return {};
}

// Each non-positional option takes one value per occurrence: a repeatable flag (a vector) never
// swallows the next argument, which is a positional or an error.
void oneValuePerFlag(CLI::App& app) {
  for (CLI::Option* option : app.get_options())
    if (option->nonpositional() && option->get_type_size() != 0)
      option->allow_extra_args(false);
  for (CLI::App* sub : app.get_subcommands({}))
    oneValuePerFlag(*sub);
}

// The names of the selected subcommands, " build" for "bpfchain-pkg build".
std::string commandPath(const CLI::App& app) {
  std::string path;
  for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
    sub = sub->get_subcommands().front();
    path += " " + sub->get_name();
  }
  return path;
}

CLI::Validator choice(const char* want, bool (*ok)(const std::string&)) {
  return CLI::Validator(
      [want, ok](std::string& value) -> std::string {
        return ok(value) ? std::string() : std::string(want) + ", not \"" + value + "\"";
      },
      "");
}

} // namespace

CommandLine::CommandLine(std::string program, const std::string& synopsis)
    : program_(std::move(program)), app_(synopsis, program_) {
  app_.formatter(std::make_shared<Formatter>());
  app_.get_formatter()->label("Usage", "usage");
  app_.get_formatter()->column_width(28);
  app_.set_version_flag("--version", program_ + " " + kVersion, "print the version and exit");
  app_.set_help_flag("-h,--help", "print this help and exit");
  // Unknown arguments are ours to report (extrasMessage); a flag given twice: the last wins.
  app_.allow_extras();
  app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

CommandLine& CommandLine::logFlags() {
  auto add = [this](CLI::App& app) {
    app.add_option("--log-level", logLevel_, "error, warning, info (default) or debug")
        ->type_name("LEVEL")
        ->check(choice("want error, warning, info or debug",
                       [](const std::string& v) { return log::parseLevel(v).has_value(); }));
    app.add_option("--log-format", logFormat_, "text (default) or json (one object per line)")
        ->type_name("FORMAT")
        ->check(choice("want text or json",
                       [](const std::string& v) { return log::parseFormat(v).has_value(); }));
  };
  add(app_);
  for (CLI::App* sub : app_.get_subcommands({}))
    add(*sub);
  return *this;
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
  oneValuePerFlag(app_);
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app_.exit(e);
  } catch (const CLI::ParseError& e) {
    return parseError(e);
  }
  if (std::string message = extrasMessage(); !message.empty())
    return usageError(message);
  log::Options options = log::options();
  if (!logLevel_.empty())
    options.level = *log::parseLevel(logLevel_);
  if (!logFormat_.empty())
    options.format = *log::parseFormat(logFormat_);
  log::configure(options);
  return std::nullopt;
}

int CommandLine::parseError(const CLI::ParseError& error) const {
  // An unknown argument explains the rest (a flag taken for a command, a value left over).
  if (std::string message = extrasMessage(); !message.empty())
    return usageError(message);
  if (dynamic_cast<const CLI::RequiredError*>(&error) && app_.get_require_subcommand_min() > 0 &&
      app_.get_subcommands().empty()) {
    std::fputs(app_.help().c_str(), stderr);
    return kExitUsage;
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&error)) {
    // CLI11 says "--flag: 1 required TYPE missing": the flag is what precedes the colon.
    std::string what = error.what();
    return usageError(what.substr(0, what.find(':')) + " needs a value");
  }
  return usageError(error.what());
}

std::string CommandLine::extrasMessage() const {
  for (const CLI::App* app = &app_;; app = app->get_subcommands().front()) {
    if (std::string message = extrasOf(*app); !message.empty())
      return message;
    if (app->get_subcommands().empty())
      return {};
  }
}

int CommandLine::usageError(const std::string& message) const {
  std::fprintf(stderr, "%s%s: %s\nRun '%s%s --help' for usage.\n", program_.c_str(),
               commandPath(app_).c_str(), message.c_str(), program_.c_str(),
               commandPath(app_).c_str());
  return kExitUsage;
}

CLI::Validator integerIn(long min, long max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        long n = std::strtol(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno != 0 || n < min || n > max)
          return "needs a number from " + std::to_string(min) + " to " + std::to_string(max) +
                 ", not \"" + value + "\"";
        return {};
      },
      "");
}

} // namespace bpfchain::cli
