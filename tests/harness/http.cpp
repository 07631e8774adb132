#include "harness/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

#include "system/fd.h"

namespace bpfchain::testing {

Result<HttpResponse> httpGet(const std::string& host, uint16_t port, const std::string& path,
                             int timeoutMs) {
  FD sock(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock)
    return systemError(errno, "socket");
  timeval tv{timeoutMs / 1000, static_cast<suseconds_t>(timeoutMs % 1000) * 1000};
  setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    return invalidError("not an IPv4 address: " + host);
  std::string where = host + ":" + std::to_string(port) + path;
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return systemError(errno, "connect to " + where);
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (send(sock.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return systemError(errno, "send to " + where);
  std::string response;
  char buffer[65536];
  ssize_t n;
  while ((n = recv(sock.get(), buffer, sizeof(buffer), 0)) > 0)
    response.append(buffer, n);
  if (n < 0)
    return systemError(errno, "receive from " + where);
  size_t headerEnd = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || headerEnd == std::string::npos)
    return invalidError(where + ": not an HTTP response");
  HttpResponse r;
  r.status = std::atoi(response.c_str() + response.find(' ') + 1);
  r.body = response.substr(headerEnd + 4);
  // Chunked bodies (civetweb may use them) are decoded here.
  std::string headers = response.substr(0, headerEnd);
  for (auto& c : headers)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (headers.find("transfer-encoding: chunked") != std::string::npos) {
    std::string body, raw = r.body;
    size_t at = 0;
    while (at < raw.size()) {
      size_t eol = raw.find("\r\n", at);
      if (eol == std::string::npos)
        break;
      size_t size = std::stoul(raw.substr(at, eol - at), nullptr, 16);
      if (size == 0)
        break;
      body += raw.substr(eol + 2, size);
      at = eol + 2 + size + 2;
    }
    r.body = body;
  }
  return r;
}

std::optional<double> metricValue(const std::string& text, const std::string& metric,
                                  const std::vector<std::string>& labels) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    if (line.compare(0, metric.size(), metric) != 0 ||
        (line.size() > metric.size() && line[metric.size()] != '{' && line[metric.size()] != ' '))
      continue;
    bool all = true;
    for (const auto& l : labels)
      all = all && line.find(l) != std::string::npos;
    if (!all)
      continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

} // namespace bpfchain::testing
