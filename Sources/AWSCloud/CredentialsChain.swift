import Foundation
import Logging

/// The providers in order, the first with credentials winning, and the result cached until
/// `refreshBeforeExpiry` before it expires. Concurrent callers during a refresh share one fetch,
/// so a burst of EC2 calls at expiry sends one request to STS or IMDS, not one each.
///
/// A provider that is configured but fails (a 401 from the container agent, STS refusing the
/// token) does not end the search: the chain goes on to the next one, and when none has
/// credentials `.noCredentials(tried:)` lists what each said.
public actor AWSCredentialsChain: AWSCredentialsProvider {
    public nonisolated let name = "chain"
    public nonisolated let providers: [any AWSCredentialsProvider]
    let refreshBeforeExpiry: TimeInterval
    let now: @Sendable () -> Date
    let logger: Logger
    private var cached: AWSCredentials?
    private var refreshing: Task<Result<AWSCredentials, CloudError>, Never>?

    public init(providers: [any AWSCredentialsProvider], logger: Logger, refreshBeforeExpiry: TimeInterval = 300,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.providers = providers; self.logger = logger; self.refreshBeforeExpiry = refreshBeforeExpiry; self.now = now
    }

    /// The AWS SDKs' default order for what a node agent can meet: environment variables, web
    /// identity (IRSA), the container endpoint (EKS Pod Identity), then the instance role from
    /// IMDS (left out when `imds` is nil or `AWS_EC2_METADATA_DISABLED=true`). `region` is for
    /// the STS endpoint; `now` is injectable for tests of expiry.
    public static func standard(environment: [String: String], region: String, http: any CloudHTTPTransport, imds: IMDSClient?,
                                logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) -> AWSCredentialsChain {
        var providers: [any AWSCredentialsProvider] = [
            EnvironmentCredentialsProvider(environment: environment),
            WebIdentityCredentialsProvider(environment: environment, region: region, http: http, logger: logger, now: now),
            ContainerCredentialsProvider(environment: environment, http: http, logger: logger),
        ]
        if let imds, !AWSEnvironment.imdsDisabled(environment) { providers.append(InstanceRoleCredentialsProvider(imds: imds)) }
        return AWSCredentialsChain(providers: providers, logger: logger, now: now)
    }

    public func credentials() async throws(CloudError) -> AWSCredentials {
        if let cached, !needsRefresh(cached) { return cached }
        let task: Task<Result<AWSCredentials, CloudError>, Never>
        if let refreshing {
            task = refreshing
        } else {
            task = Task { await self.resolve() }
            refreshing = task
        }
        let result = await task.value
        if refreshing == task {
            refreshing = nil
            if case .success(let c) = result {
                cached = c
                logger.debug("AWS credentials from \(c.source)\(c.expiration.map { ", expiring \(AWSDate.iso8601($0))" } ?? "")")
            }
        }
        switch result {
        case .success(let c): return c
        case .failure(let error):
            // A failed early refresh keeps the old credentials while they still work.
            if let cached, let expiration = cached.expiration, now() < expiration {
                logger.warning("AWS credentials refresh failed, using the current ones until \(AWSDate.iso8601(expiration)): \(error)")
                return cached
            }
            throw error
        }
    }

    /// Forgets the cached credentials (after an `AuthFailure`, say), so the next call resolves anew.
    public func invalidate() { cached = nil }

    func needsRefresh(_ c: AWSCredentials) -> Bool {
        guard let expiration = c.expiration else { return false }
        return now() >= expiration.addingTimeInterval(-refreshBeforeExpiry)
    }

    private func resolve() async -> Result<AWSCredentials, CloudError> {
        var tried: [String] = []
        for provider in providers {
            do throws(CloudError) {
                return .success(try await provider.credentials())
            } catch {
                if case .noCredentials(let reasons) = error { tried += reasons } else { tried.append("\(provider.name): \(error)") }
            }
        }
        logger.debug("no AWS credentials: \(tried.joined(separator: "; "))")
        return .failure(.noCredentials(tried: tried))
    }
}
