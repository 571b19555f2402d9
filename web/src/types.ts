// The JSON the Go server sends (internal/ui/view_*.go); keep in step.

export interface Ref { kind: string; namespace?: string; name: string }
export interface Event {
  time: string; type: string; reason: string; message: string; count: number; object: Ref; source?: string;
}
export interface PodBrief {
  name: string; namespace: string; status: string; phase: string; ready: boolean; restarts: number; node?: string; owner?: Ref;
}

export interface StatefulSetsView { items: StatefulSetSummary[]; selected: StatefulSetDetail | null }
export interface StatefulSetSummary { ref: Ref; replicas: number; ready: number; updated: number }
export interface Claim {
  name: string; template: string; ordinal: number; exists: boolean; phase?: string; volume?: string; storageClass?: string; capacity?: string;
}
export interface Ordinal {
  ordinal: number; podName: string; inRange: boolean; pod?: PodBrief; revision?: string; updated: boolean; claims: Claim[];
}
export interface StatefulSetDetail {
  ref: Ref; serviceName: string; replicas: number; firstOrdinal: number; podManagementPolicy: string; updateStrategy: string;
  partition?: number; currentRevision: string; updateRevision: string;
  readyReplicas: number; currentReplicas: number; updatedReplicas: number; availableReplicas: number; rolloutDone: boolean;
  whenScaled: string; whenDeleted: string; ordinals: Ordinal[]; retainedClaims: Claim[]; events: Event[];
}

export interface DaemonSetColumn {
  ref: Ref; desired: number; current: number; ready: number; updated: number; available: number; misscheduled: number;
  updateStrategy: string; maxUnavailable?: string; maxSurge?: string; revision?: string; nodeSelector?: string; canarySelector?: string;
}
export interface NodeRow { name: string; ready: boolean; cordoned: boolean; labels: string[]; taints: string[] }
export interface DaemonCell { state: string; why?: string; pods?: PodBrief[]; updated: boolean }
export interface DaemonSetsView { daemonSets: DaemonSetColumn[]; nodes: NodeRow[]; cells: DaemonCell[][] }

export interface JobSummary {
  ref: Ref; owner?: Ref; status: string; completions: string; active: number; succeeded: number; failed: number; created: string;
}
export interface Condition { type: string; status: string; reason?: string; message?: string; time: string }
export interface JobPod extends PodBrief {
  index?: number; created: string; started?: string; finished?: string; exitCode?: number; lastExitCode?: number; reason?: string;
}
export interface JobDetail {
  ref: Ref; owner?: Ref; status: string; completions: number | null; parallelism: number; completionMode: string;
  backoffLimit: number; backoffLimitPerIndex?: number; activeDeadlineSeconds?: number; restartPolicy: string; suspended: boolean;
  active: number; ready: number; succeeded: number; failed: number; terminating: number;
  created: string; startTime?: string; endTime?: string; deadline?: string; outcome?: Condition; conditions: Condition[];
  pods: JobPod[]; series: { time: string; succeeded: number; failed: number }[];
  backoff?: { failures: number; delaySeconds: number; lastFailure: string; next: string };
  indexes?: { index: number; state: string }[]; events: Event[];
}
export interface JobsView { items: JobSummary[]; selected: JobDetail | null }

export interface CronRun { time: string; wall: string; state: string; job?: string; manual?: boolean; why?: string }
export interface CronJobSummary { ref: Ref; schedule: string; timeZone?: string; suspended: boolean; active: number; lastSchedule?: string }
export interface CronJobDetail {
  ref: Ref; schedule: string; timeZone?: string; zone: string; concurrencyPolicy: string; startingDeadlineSeconds?: number;
  suspended: boolean; successfulJobsHistoryLimit: number; failedJobsHistoryLimit: number;
  lastScheduleTime?: string; lastSuccessfulTime?: string; error?: string; now: string; runs: CronRun[]; warnings: string[]; events: Event[];
}
export interface CronJobsView { items: CronJobSummary[]; selected: CronJobDetail | null }

export interface NodePods extends NodeRow { pods: PodBrief[] }
export interface ClusterView { nodes: NodePods[]; unscheduled: PodBrief[]; podCount: number }
export interface EventsView { events: Event[]; matched: number; total: number }
