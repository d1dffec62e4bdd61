import AWSCloud
import Datapath
import Foundation
import IPAMDCloud
import IPAMDCore
import IPAMDPool
import IPAMPool
import Logging
import NetModel

/// The regular pods' pool, when ipamd discovered the node through the cloud: the instance's
/// ENIs, the restored pods' addresses given back, then the sizing loop (a service). Without the
/// cloud (every override given) there is none, and regular pods are refused as before. A pool
/// that cannot start stops ipamd: the node's regular pods would get no address.
func startPool(_ node: IPAMDConfig, discovered: DiscoveredNode, cloud: CloudConnections?, registry: PodRegistry,
               logger: Logger) async -> PoolManager? {
    guard let cloud, let md = discovered.metadata, let primary = md.primary else { return nil }
    let ec2 = cloud.ec2(region: node.cloud.region ?? md.region)
    let host: NetlinkENIHost
    do { host = try NetlinkENIHost(sysctl: ProcSysctl(root: node.sysctlRoot), logger: logger) } catch {
        logger.critical("cannot open netlink for the address pool", metadata: ["error": "\(error)"])
        exit(1)
    }
    var settings = PoolSettings(
        targets: PoolTargets(warmENI: node.pool.warmENI, warmIP: node.pool.warmIP, minimumIP: node.pool.minimumIP, warmPrefix: node.pool.warmPrefix,
                             prefixDelegation: node.pool.prefixDelegation),
        maxENI: node.pool.maxENI,
        // The trunk's interface slot stays free until the resource controller has attached it.
        reserveTrunkSlot: node.enablePodENI && node.trunk == nil && discovered.attachedTrunk == nil,
        instanceID: md.instanceID, instanceType: md.instanceType, primaryENIID: primary.interfaceID, subnetID: primary.subnetID,
        subnet: primary.subnetCIDR, securityGroupIDs: primary.securityGroupIDs, clusterName: node.pool.clusterName)
    settings.mtu = node.eniMTU
    settings.cooldown = node.pool.cooldown
    let pool = PoolManager(settings: settings, ec2: ec2, host: host, logger: logger)
    let restored = registry.regularPodAddresses
    do {
        // Discovery's list when it made one (pod ENI on): one DescribeNetworkInterfaces at start.
        var attached = discovered.enis ?? []
        if discovered.enis == nil { attached = try await ec2.describeInstanceNetworkInterfaces(instanceID: md.instanceID) }
        let subnets = Dictionary(md.interfaces.map { ($0.mac, $0.subnetCIDR) }, uniquingKeysWith: { a, _ in a })
        let missing = try await pool.start(attached: attached, subnets: subnets, restored: restored)
        for (holder, address) in missing {
            // The VPC no longer routes it to this node: the pod keeps running, unreachable.
            logger.error("a pod's address is no longer on any of the node's ENIs", metadata: [
                "pod": "\(holder.namespace)/\(holder.name)", "ip": "\(address)",
            ])
        }
    } catch {
        logger.critical("cannot start the address pool for regular pods", metadata: ["error": "\(error)"])
        exit(1)
    }
    return pool
}
