// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Membership} from "../../contracts/Membership.sol";
import {ModelRegistry} from "../../contracts/ModelRegistry.sol";
import {Cheats, InvariantBase} from "./utils/Base.sol";

/// @notice Drives Membership and ModelRegistry: six accounts join and leave three
///         organisations, gain and lose roles, register versions, approve them (directly or
///         by relayed signature, sometimes signed by the wrong key or for the wrong digest),
///         withdraw approvals, cancel nonces, deprecate, deploy and roll back, while the
///         registry admin tightens and loosens the staging requirement. Its own model (ghost)
///         of memberships, role grants, approvals and requirements says what the gate must do;
///         every disagreement is counted.
contract ModelRegistryHandler is Cheats {
    uint256 internal constant ACTORS = 6; // private keys 1..6
    uint256 internal constant NONCES = 4;
    bytes32 internal constant QA = keccak256("qa");
    bytes32 internal constant AUDITOR = keccak256("auditor");
    bytes32 internal constant TRAINER = keccak256("trainer");
    bytes32 public constant PROD = keccak256("prod");
    bytes32 public constant STAGING = keccak256("staging");
    uint48 internal constant DELAY = 1 days;

    Membership public immutable membership;
    ModelRegistry public immutable registry;

    struct GhostVersion {
        bytes32 id;
        bytes32 digest;
        bytes32 orgId;
        address registrant;
        bool deprecated;
    }

    struct GhostApproval {
        bool exists;
        bool signed;
        bytes32 role;
        bytes32 env;
        bytes32 orgId;
        uint256 grant;
        uint256 nonce;
    }

    struct Rule {
        bytes32[] roles;
        uint16[] counts;
        uint16 minOrgs;
        bool selfApproval;
    }

    // Ghost model.
    bytes32[3] internal _orgs = [keccak256("org-a"), keccak256("org-b"), keccak256("org-c")];
    mapping(address => bytes32) public ghostOrg;
    mapping(address => mapping(bytes32 role => bool)) public ghostHolds;
    mapping(address => mapping(bytes32 role => uint256)) public ghostGrant;
    uint256 internal _grants;
    GhostVersion[] internal _versions;
    mapping(bytes32 versionId => mapping(address => GhostApproval)) internal _approvals;
    mapping(address => mapping(uint256 nonce => bool)) internal _nonceUsed;
    mapping(address => mapping(uint256 nonce => bytes32 versionId)) internal _nonceVersion;
    bool public stagingStrict;
    bool public pendingExists;
    bool public pendingStrict;
    uint256 public pendingEta;
    mapping(bytes32 env => bytes32) public ghostCurrent;
    mapping(bytes32 env => mapping(bytes32 versionId => bool)) internal _everDeployed;

    uint256 public violations;
    string public lastViolation;
    uint256 public deploys;
    uint256 public approvalsRecorded;

    constructor() {
        membership = new Membership(address(this));
        registry = new ModelRegistry(membership, address(this), DELAY);
        for (uint256 i = 0; i < 3; ++i) {
            // Founders named at creation never accept; the owner administers (recovery).
            membership.createOrg(_orgs[i], vm.addr(900 + i));
        }
        // Actors 1, 2 in org-a; 3, 4 in org-b; 5, 6 in org-c. Trainers 1 and 6, qa 2, 3 and 5,
        // auditors 4 and 6.
        for (uint256 i = 0; i < ACTORS; ++i) {
            _join(i, i / 2);
        }
        _grant(0, TRAINER);
        _grant(5, TRAINER);
        _grant(1, QA);
        _grant(2, QA);
        _grant(4, QA);
        _grant(3, AUDITOR);
        _grant(5, AUDITOR);
        registry.setRequirement(PROD, _prod().roles, _prod().counts, 2, false);
        Rule memory w = _staging(false);
        registry.setRequirement(STAGING, w.roles, w.counts, w.minOrgs, w.selfApproval);
    }

    // --- the model ------------------------------------------------------------------------

    function _actor(uint256 seed) internal pure returns (address) {
        return vm.addr(seed % ACTORS + 1);
    }

    function _role(uint256 seed) internal pure returns (bytes32) {
        uint256 r = seed % 3;
        return r == 0 ? QA : r == 1 ? AUDITOR : TRAINER;
    }

    function _env(uint256 seed) internal pure returns (bytes32) {
        uint256 e = seed % 4;
        return e == 0 ? PROD : e == 1 ? STAGING : bytes32(0); // 0: ANY_ENV
    }

    /// @dev Mostly a role `who` holds (so that approvals land), sometimes any role.
    function _approvalRole(address who, uint256 seed) internal view returns (bytes32) {
        if (seed % 4 != 0) {
            for (uint256 i = 0; i < 3; ++i) {
                bytes32 role = _role(seed / 4 + i);
                if (ghostHolds[who][role]) return role;
            }
        }
        return _role(seed / 4);
    }

    function _prod() internal pure returns (Rule memory r) {
        r.roles = new bytes32[](2);
        r.counts = new uint16[](2);
        (r.roles[0], r.counts[0]) = (QA, 2);
        (r.roles[1], r.counts[1]) = (AUDITOR, 1);
        (r.minOrgs, r.selfApproval) = (2, false);
    }

    /// @dev Staging: weak (one qa, self-approval allowed) or strict (one qa and one auditor
    ///      from two organisations, no self-approval). Strict -> weak is a weakening.
    function _staging(bool strict) internal pure returns (Rule memory r) {
        if (!strict) {
            r.roles = new bytes32[](1);
            r.counts = new uint16[](1);
            (r.roles[0], r.counts[0]) = (QA, 1);
            (r.minOrgs, r.selfApproval) = (1, true);
        } else {
            r.roles = new bytes32[](2);
            r.counts = new uint16[](2);
            (r.roles[0], r.counts[0]) = (QA, 1);
            (r.roles[1], r.counts[1]) = (AUDITOR, 1);
            (r.minOrgs, r.selfApproval) = (2, false);
        }
    }

    function _rule(bytes32 env) internal view returns (Rule memory) {
        return env == PROD ? _prod() : _staging(stagingStrict);
    }

    /// @notice Whether the model says version `index` may be deployed to `env` now: not
    ///         deprecated, and per required role enough distinct approvers (never the
    ///         registrant unless allowed) who still hold the very role grant they approved
    ///         with, from enough distinct organisations.
    function ghostGate(bytes32 env, uint256 index) public view returns (bool) {
        GhostVersion storage v = _versions[index];
        if (v.deprecated) return false;
        Rule memory rule = _rule(env);
        uint256[] memory have = new uint256[](rule.roles.length);
        bytes32[] memory orgs = new bytes32[](ACTORS);
        uint256 norgs = 0;
        for (uint256 i = 0; i < ACTORS; ++i) {
            address who = vm.addr(i + 1);
            GhostApproval storage a = _approvals[v.id][who];
            if (!a.exists) continue;
            if (a.env != env && a.env != bytes32(0)) continue;
            if (who == v.registrant && !rule.selfApproval) continue;
            if (!ghostHolds[who][a.role] || ghostGrant[who][a.role] != a.grant) continue;
            if (ghostOrg[who] != a.orgId) continue;
            bool required = false;
            for (uint256 j = 0; j < rule.roles.length; ++j) {
                if (rule.roles[j] == a.role) {
                    have[j] += 1;
                    required = true;
                }
            }
            if (!required) continue;
            bool seen = false;
            for (uint256 k = 0; k < norgs; ++k) {
                if (orgs[k] == a.orgId) seen = true;
            }
            if (!seen) orgs[norgs++] = a.orgId;
        }
        for (uint256 j = 0; j < rule.roles.length; ++j) {
            if (have[j] < rule.counts[j]) return false;
        }
        return norgs >= rule.minOrgs;
    }

    /// @dev Half the time the newest version (so that approvals gather on one), else any.
    function _pick(uint256 seed) internal view returns (uint256) {
        uint256 n = _versions.length;
        return seed % 2 == 0 ? n - 1 : (seed / 2) % n;
    }

    /// @dev Mostly an actor holding `role`, sometimes any actor.
    function _actorWith(uint256 seed, bytes32 role) internal view returns (address) {
        if (seed % 4 != 0) {
            for (uint256 i = 0; i < ACTORS; ++i) {
                address who = _actor(seed / 4 + i);
                if (ghostHolds[who][role]) return who;
            }
        }
        return _actor(seed / 4);
    }

    function versionCount() external view returns (uint256) {
        return _versions.length;
    }

    function versionAt(uint256 index) external view returns (GhostVersion memory) {
        return _versions[index];
    }

    function _violation(string memory what) internal {
        violations += 1;
        lastViolation = what;
    }

    function _join(uint256 actorSeed, uint256 orgSeed) internal returns (bool) {
        address who = _actor(actorSeed);
        bytes32 orgId = _orgs[orgSeed % 3];
        try membership.invite(orgId, who) {}
        catch {
            if (ghostOrg[who] == bytes32(0)) _violation("invite refused");
            return false;
        }
        vm.prank(who);
        membership.acceptInvitation(orgId);
        if (ghostOrg[who] != bytes32(0)) _violation("joined a second organisation");
        ghostOrg[who] = orgId;
        return true;
    }

    function _grant(uint256 actorSeed, bytes32 role) internal {
        address who = _actor(actorSeed);
        bytes32 orgId = ghostOrg[who];
        if (orgId == bytes32(0)) orgId = _orgs[actorSeed % 3];
        try membership.grantRole(orgId, who, role) {
            if (ghostOrg[who] != orgId || ghostHolds[who][role]) _violation("bad grant accepted");
            ghostHolds[who][role] = true;
            ghostGrant[who][role] = ++_grants;
        } catch {
            if (ghostOrg[who] == orgId && !ghostHolds[who][role]) _violation("grant refused");
        }
    }

    // --- membership actions ---------------------------------------------------------------

    function join(uint256 actorSeed, uint256 orgSeed) external {
        _join(actorSeed, orgSeed);
    }

    /// @dev Join by relayed consent; `forge` % 4 == 0 signs it with another actor's key.
    function joinBySig(uint256 actorSeed, uint256 orgSeed, uint256 forge, uint256 nonce) external {
        address who = _actor(actorSeed);
        bytes32 orgId = _orgs[orgSeed % 3];
        uint256 key =
            forge % 4 == 0 ? (actorSeed % ACTORS + 1) % ACTORS + 1 : actorSeed % ACTORS + 1;
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 digest = membership.joinDigest(orgId, who, nonce, deadline);
        try membership.addMember(orgId, who, nonce, deadline, signature(key, digest)) {
            if (vm.addr(key) != who) _violation("join without the member's consent");
            if (ghostOrg[who] != bytes32(0)) _violation("joined a second organisation");
            ghostOrg[who] = orgId;
        } catch {}
    }

    function leave(uint256 actorSeed) external {
        address who = _actor(actorSeed);
        bytes32 orgId = ghostOrg[who];
        if (orgId == bytes32(0)) return;
        bool anyRole = ghostHolds[who][QA] || ghostHolds[who][AUDITOR] || ghostHolds[who][TRAINER];
        try membership.removeMember(orgId, who) {
            if (anyRole) _violation("member left holding roles");
            ghostOrg[who] = bytes32(0);
        } catch {
            if (!anyRole) _violation("leave refused");
        }
    }

    function grant(uint256 actorSeed, uint256 roleSeed) external {
        _grant(actorSeed, _role(roleSeed));
    }

    function revoke(uint256 actorSeed, uint256 roleSeed) external {
        address who = _actor(actorSeed);
        bytes32 role = _role(roleSeed);
        bytes32 orgId = ghostOrg[who];
        if (orgId == bytes32(0)) return;
        try membership.revokeRole(orgId, who, role) {
            if (!ghostHolds[who][role]) _violation("revoked a role not held");
            ghostHolds[who][role] = false;
        } catch {
            if (ghostHolds[who][role]) _violation("revoke refused");
        }
    }

    // --- versions and approvals -----------------------------------------------------------

    function register(uint256 actorSeed, uint256 nameSeed, uint256 digestSeed) external {
        address who = _actorWith(actorSeed, TRAINER);
        string memory name = string(abi.encodePacked("model-", bytes1(uint8(48 + nameSeed % 4))));
        bytes32 digest = keccak256(abi.encode("weights", digestSeed % 8));
        vm.prank(who);
        try registry.registerVersion(name, "1.0.0", digest, bytes32(0), new bytes32[](0)) returns (
            bytes32 id
        ) {
            if (ghostOrg[who] == bytes32(0) || !ghostHolds[who][TRAINER]) {
                _violation("registered without the trainer role");
            }
            if (id != registry.versionIdOf(ghostOrg[who], name, "1.0.0")) {
                _violation("version id not namespaced by organisation");
            }
            _versions.push(GhostVersion(id, digest, ghostOrg[who], who, false));
        } catch {}
    }

    /// @dev Whether the model accepts an approval of version `index` by `who` in `role` now.
    function _mayApprove(uint256 index, address who, bytes32 role) internal view returns (bool) {
        GhostVersion storage v = _versions[index];
        return !v.deprecated && ghostOrg[who] != bytes32(0) && ghostHolds[who][role]
            && !_approvals[v.id][who].exists;
    }

    function _record(
        uint256 index,
        address who,
        bytes32 role,
        bytes32 env,
        bool signed,
        uint256 nonce
    ) internal {
        _approvals[_versions[index].id][who] = GhostApproval(
            true, signed, role, env, ghostOrg[who], ghostGrant[who][role], nonce
        );
        approvalsRecorded += 1;
    }

    /// @dev `wrongDigest` % 5 == 0 names a digest other than the registered one.
    function approve(
        uint256 actorSeed,
        uint256 versionSeed,
        uint256 roleSeed,
        uint256 envSeed,
        uint256 wrongDigest
    ) external {
        if (_versions.length == 0) return;
        address who = _actor(actorSeed);
        _approveAs(
            _pick(versionSeed),
            who,
            _approvalRole(who, roleSeed),
            _env(envSeed),
            wrongDigest % 5 == 0
        );
    }

    /// @dev Every actor holding qa or auditor approves version `versionSeed` in that role for
    ///      one environment (or all): the honest sign-off round before a release.
    function approveRound(uint256 versionSeed, uint256 envSeed) external {
        if (_versions.length == 0) return;
        uint256 index = _pick(versionSeed);
        bytes32 env = _env(envSeed);
        for (uint256 i = 0; i < ACTORS; ++i) {
            address who = vm.addr(i + 1);
            bytes32 role = ghostHolds[who][AUDITOR] ? AUDITOR : QA;
            _approveAs(index, who, role, env, false);
        }
    }

    function _approveAs(uint256 index, address who, bytes32 role, bytes32 env, bool bad) internal {
        bytes32 digest = bad ? keccak256("backdoored") : _versions[index].digest;
        bool expected = !bad && _mayApprove(index, who, role);
        vm.prank(who);
        try registry.approve(_versions[index].id, digest, env, role) {
            if (!expected) _violation("approval accepted against the model");
            _record(index, who, role, env, false, 0);
        } catch {
            if (expected) _violation("approval refused against the model");
        }
    }

    /// @dev A relayed approval. `forge` % 4 == 0: signed by another actor's key; == 1: the
    ///      signature is malleated (high s).
    function approveBySig(
        uint256 actorSeed,
        uint256 versionSeed,
        uint256 roleSeed,
        uint256 envSeed,
        uint256 nonceSeed,
        uint256 forge
    ) external {
        if (_versions.length == 0) return;
        uint256 index = _pick(versionSeed);
        address who = _actor(actorSeed);
        ModelRegistry.SignedApproval memory a = ModelRegistry.SignedApproval(
            _versions[index].id,
            _versions[index].digest,
            _env(envSeed),
            _approvalRole(who, roleSeed),
            ghostOrg[who],
            who,
            nonceSeed % NONCES,
            block.timestamp + 1 hours,
            ""
        );
        uint256 key =
            forge % 4 == 0 ? (actorSeed % ACTORS + 1) % ACTORS + 1 : actorSeed % ACTORS + 1;
        a.signature = signature(
            key,
            registry.approvalDigest(
                a.versionId,
                a.subjectDigest,
                a.env,
                a.role,
                a.orgId,
                a.approver,
                a.nonce,
                a.deadline
            )
        );
        if (forge % 4 == 1) a.signature = malleate(a.signature);
        bool expected =
            forge % 4 > 1 && !_nonceUsed[who][a.nonce] && _mayApprove(index, who, a.role);
        try registry.approveBySig(a) {
            if (!expected) _violation("signed approval accepted against the model");
            _nonceUsed[who][a.nonce] = true;
            _nonceVersion[who][a.nonce] = a.versionId;
            _record(index, who, a.role, a.env, true, a.nonce);
        } catch {
            if (expected) _violation("signed approval refused against the model");
        }
    }

    function revokeApproval(uint256 actorSeed, uint256 versionSeed) external {
        if (_versions.length == 0) return;
        bytes32 id = _versions[_pick(versionSeed)].id;
        address who = _actor(actorSeed);
        vm.prank(who);
        try registry.revokeApproval(id) {
            if (!_approvals[id][who].exists) _violation("revoked a missing approval");
            delete _approvals[id][who];
        } catch {
            if (_approvals[id][who].exists) _violation("revocation refused");
        }
    }

    function cancelNonce(uint256 actorSeed, uint256 nonceSeed) external {
        address who = _actor(actorSeed);
        uint256 nonce = nonceSeed % NONCES;
        bytes32 id = _nonceVersion[who][nonce];
        GhostApproval storage a = _approvals[id][who];
        bool withdraws =
            _nonceUsed[who][nonce] && id != bytes32(0) && a.exists && a.signed && a.nonce == nonce;
        bool expected = !_nonceUsed[who][nonce] || withdraws;
        vm.prank(who);
        try registry.cancelNonce(nonce) {
            if (!expected) _violation("nonce cancelled against the model");
            if (withdraws) {
                delete _approvals[id][who];
                delete _nonceVersion[who][nonce];
            }
            _nonceUsed[who][nonce] = true;
        } catch {
            if (expected) _violation("nonce cancellation refused");
        }
    }

    function deprecate(uint256 versionSeed, bool byRegistrant) external {
        if (_versions.length == 0) return;
        GhostVersion storage v = _versions[_pick(versionSeed)];
        bool allowed =
            !byRegistrant || ghostHolds[v.registrant][TRAINER] && ghostOrg[v.registrant] == v.orgId;
        if (byRegistrant) vm.prank(v.registrant);
        try registry.deprecate(v.id) {
            if (!allowed || v.deprecated) _violation("deprecation accepted against the model");
            v.deprecated = true;
        } catch {
            if (allowed && !v.deprecated) _violation("deprecation refused");
        }
    }

    // --- the gate -------------------------------------------------------------------------

    function deploy(uint256 envSeed, uint256 versionSeed, bool wrongDigest) external {
        if (_versions.length == 0) return;
        bytes32 env = envSeed % 2 == 0 ? PROD : STAGING;
        uint256 index = _pick(versionSeed);
        GhostVersion storage v = _versions[index];
        bytes32 digest = wrongDigest ? keccak256("backdoored") : v.digest;
        bool expected = !wrongDigest && ghostGate(env, index) && ghostCurrent[env] != v.id;
        try registry.deploy(env, v.id, digest) {
            if (!expected) _violation("deployed without the required approvals");
            ghostCurrent[env] = v.id;
            _everDeployed[env][v.id] = true;
            deploys += 1;
        } catch {
            if (expected) _violation("deploy refused although approved");
        }
    }

    function rollback(uint256 envSeed, uint256 versionSeed) external {
        if (_versions.length == 0) return;
        bytes32 env = envSeed % 2 == 0 ? PROD : STAGING;
        uint256 index = _pick(versionSeed);
        bytes32 id = _versions[index].id;
        bool expected = _everDeployed[env][id] && ghostGate(env, index) && ghostCurrent[env] != id;
        try registry.rollbackTo(env, id) {
            if (!expected) _violation("rolled back without the required approvals");
            ghostCurrent[env] = id;
        } catch {
            if (expected) _violation("rollback refused although approved");
        }
    }

    /// @dev A member (not a deployer) tries to deploy or to change the rule.
    function outsiderDeploys(uint256 actorSeed, uint256 versionSeed) external {
        if (_versions.length == 0) return;
        GhostVersion storage v = _versions[_pick(versionSeed)];
        vm.prank(_actor(actorSeed));
        try registry.deploy(PROD, v.id, v.digest) {
            _violation("a non-deployer deployed");
        } catch {}
        Rule memory none;
        vm.prank(_actor(actorSeed));
        try registry.setRequirement(PROD, none.roles, none.counts, 0, true) {
            _violation("a non-admin changed the rule");
        } catch {}
    }

    function setStaging(bool strict) external {
        Rule memory r = _staging(strict);
        registry.setRequirement(STAGING, r.roles, r.counts, r.minOrgs, r.selfApproval);
        if (stagingStrict && !strict) {
            (pendingExists, pendingStrict, pendingEta) = (true, false, block.timestamp + DELAY);
        } else {
            stagingStrict = strict;
            pendingExists = false;
        }
    }

    function applyStaging() external {
        try registry.applyRequirement(STAGING) {
            if (!pendingExists || block.timestamp < pendingEta) {
                _violation("weaker rule applied before its delay");
            }
            stagingStrict = pendingStrict;
            pendingExists = false;
        } catch {
            if (pendingExists && block.timestamp >= pendingEta) _violation("due rule refused");
        }
    }

    function warp(uint256 secondsSeed) external {
        vm.warp(block.timestamp + bound(secondsSeed, 1, 2 days));
        vm.roll(block.number + 1);
    }
}

contract ModelRegistryInvariantTest is InvariantBase {
    ModelRegistryHandler internal handler;
    ModelRegistry internal registry;

    function setUp() public {
        handler = new ModelRegistryHandler();
        registry = handler.registry();
        targetContract(address(handler));
        bytes4[] memory s = new bytes4[](25);
        s[0] = ModelRegistryHandler.join.selector;
        s[1] = ModelRegistryHandler.joinBySig.selector;
        s[2] = ModelRegistryHandler.leave.selector;
        s[3] = ModelRegistryHandler.grant.selector;
        s[4] = ModelRegistryHandler.revoke.selector;
        s[5] = ModelRegistryHandler.register.selector;
        s[6] = ModelRegistryHandler.approve.selector;
        s[7] = ModelRegistryHandler.approveBySig.selector;
        s[8] = ModelRegistryHandler.revokeApproval.selector;
        s[9] = ModelRegistryHandler.cancelNonce.selector;
        s[10] = ModelRegistryHandler.deprecate.selector;
        s[11] = ModelRegistryHandler.deploy.selector;
        s[12] = ModelRegistryHandler.rollback.selector;
        s[13] = ModelRegistryHandler.outsiderDeploys.selector;
        s[14] = ModelRegistryHandler.setStaging.selector;
        s[15] = ModelRegistryHandler.applyStaging.selector;
        s[16] = ModelRegistryHandler.warp.selector;
        // Weight the paths to a deployment.
        s[17] = ModelRegistryHandler.approve.selector;
        s[18] = ModelRegistryHandler.approveBySig.selector;
        s[19] = ModelRegistryHandler.deploy.selector;
        s[20] = ModelRegistryHandler.register.selector;
        s[21] = ModelRegistryHandler.approve.selector;
        s[22] = ModelRegistryHandler.approveBySig.selector;
        s[23] = ModelRegistryHandler.deploy.selector;
        s[24] = ModelRegistryHandler.approveRound.selector;
        targetSelector(address(handler), s);
    }

    /// @notice Nothing was accepted that the model refuses (in particular: no deployment or
    ///         rollback without the required approvals from current, distinct members), and
    ///         nothing refused that it accepts.
    function invariant_modelAgrees() public view {
        if (handler.violations() != 0) revert AssertionFailed(handler.lastViolation());
    }

    /// @notice At every step, for every version and environment, the on-chain gate agrees
    ///         with the model's: approvals count only from members who still hold the very
    ///         role grant they approved with, once per person, not the registrant's (unless
    ///         allowed), from enough organisations.
    function invariant_gateMatchesModel() public view {
        uint256 n = handler.versionCount();
        bytes32[2] memory envs = [handler.PROD(), handler.STAGING()];
        for (uint256 i = 0; i < n; ++i) {
            bytes32 id = handler.versionAt(i).id;
            for (uint256 e = 0; e < 2; ++e) {
                check(registry.gatePasses(envs[e], id) == handler.ghostGate(envs[e], i), "gate");
            }
        }
    }

    /// @notice What runs in each environment is what the model deployed, with the digest
    ///         that was registered (and approved) for it.
    function invariant_deployedDigestIsRegistered() public view {
        bytes32[2] memory envs = [handler.PROD(), handler.STAGING()];
        for (uint256 e = 0; e < 2; ++e) {
            bytes32 current = registry.currentVersion(envs[e]);
            check(current == handler.ghostCurrent(envs[e]), "current version");
            if (current == bytes32(0)) continue;
            uint256 n = handler.versionCount();
            for (uint256 i = 0; i < n; ++i) {
                ModelRegistryHandler.GhostVersion memory v = handler.versionAt(i);
                if (v.id == current) {
                    check(registry.getVersion(current).subjectDigest == v.digest, "digest");
                }
            }
        }
    }

    /// @notice A weakening of the staging rule is in force only after its delay.
    function invariant_requirementDelay() public view {
        (bytes32[] memory roles,, uint16 minOrgs, bool selfApproval,) =
            registry.getRequirement(handler.STAGING());
        bool strict = handler.stagingStrict();
        checkEq(roles.length, strict ? 2 : 1, "staging roles");
        checkEq(minOrgs, strict ? 2 : 1, "staging organisations");
        check(selfApproval == !strict, "staging self-approval");
    }
}

/// @notice Fuzz tests of the signature paths of ModelRegistry and Membership.
contract RegistrySignatureFuzzTest is Cheats {
    bytes32 internal constant ORG = keccak256("org");
    bytes32 internal constant QA = keccak256("qa");
    bytes32 internal constant TRAINER = keccak256("trainer");
    Membership internal membership;
    ModelRegistry internal registry;
    ModelRegistry internal other;
    bytes32 internal versionId;
    bytes32 internal constant DIGEST = keccak256("weights");

    function setUp() public {
        membership = new Membership(address(this));
        registry = new ModelRegistry(membership, address(this), 1 days);
        other = new ModelRegistry(membership, address(this), 1 days);
        membership.createOrg(ORG, address(this));
        for (uint256 key = 1; key <= 2; ++key) {
            membership.invite(ORG, vm.addr(key));
            vm.prank(vm.addr(key));
            membership.acceptInvitation(ORG);
        }
        membership.grantRole(ORG, vm.addr(1), TRAINER);
        membership.grantRole(ORG, vm.addr(2), QA);
        vm.prank(vm.addr(1));
        versionId = registry.registerVersion("m", "1", DIGEST, bytes32(0), new bytes32[](0));
        vm.prank(vm.addr(1));
        other.registerVersion("m", "1", DIGEST, bytes32(0), new bytes32[](0));
    }

    function _signed(ModelRegistry target, uint256 key, uint256 nonce, bytes32 digest)
        internal
        view
        returns (ModelRegistry.SignedApproval memory a)
    {
        a = ModelRegistry.SignedApproval(
            versionId, digest, bytes32(0), QA, ORG, vm.addr(2), nonce, block.timestamp + 1, ""
        );
        a.signature = signature(
            key,
            target.approvalDigest(
                a.versionId,
                a.subjectDigest,
                a.env,
                a.role,
                a.orgId,
                a.approver,
                a.nonce,
                a.deadline
            )
        );
    }

    function _key(uint256 seed) internal pure returns (uint256) {
        return bound(seed, 1, 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140);
    }

    /// @notice Only the approver's own key makes its approval.
    function testFuzz_approvalNeedsTheApproversKey(uint256 keySeed, uint256 nonce) public {
        uint256 key = _key(keySeed);
        vm.assume(key != 2);
        ModelRegistry.SignedApproval memory a = _signed(registry, key, nonce, DIGEST);
        vm.expectRevert(
            abi.encodeWithSelector(ModelRegistry.WrongSigner.selector, vm.addr(key), vm.addr(2))
        );
        registry.approveBySig(a);
    }

    /// @notice An approval signed for one registry does not count on another (domain), a
    ///         malleated copy is refused, and a nonce is used once.
    function testFuzz_approvalReplay(uint256 nonce) public {
        ModelRegistry.SignedApproval memory a = _signed(other, 2, nonce, DIGEST);
        vm.expectRevert();
        registry.approveBySig(a);
        a = _signed(registry, 2, nonce, DIGEST);
        bytes memory honest = a.signature;
        a.signature = malleate(honest);
        vm.expectRevert();
        registry.approveBySig(a);
        a.signature = honest;
        registry.approveBySig(a);
        check(registry.hasApproved(versionId, vm.addr(2)), "honest approval recorded");
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.NonceUsed.selector, vm.addr(2), nonce));
        registry.approveBySig(a);
    }

    /// @notice An approval of any other subject digest is refused (version squatting).
    function testFuzz_approvalBindsTheDigest(bytes32 digest, uint256 nonce) public {
        vm.assume(digest != DIGEST);
        ModelRegistry.SignedApproval memory a = _signed(registry, 2, nonce, digest);
        vm.expectRevert(
            abi.encodeWithSelector(ModelRegistry.DigestMismatch.selector, versionId, digest, DIGEST)
        );
        registry.approveBySig(a);
    }

    /// @notice Nobody joins an organisation without its own signed consent.
    function testFuzz_joinNeedsConsent(uint256 keySeed, uint256 nonce) public {
        uint256 key = _key(keySeed);
        address account = vm.addr(3);
        vm.assume(key != 3);
        uint256 deadline = block.timestamp + 1;
        bytes memory sig = signature(key, membership.joinDigest(ORG, account, nonce, deadline));
        vm.expectRevert(
            abi.encodeWithSelector(Membership.WrongSigner.selector, vm.addr(key), account)
        );
        membership.addMember(ORG, account, nonce, deadline, sig);
    }
}
