//! A small min-cost max-flow solver (successive shortest paths with Dijkstra and Johnson
//! potentials), used by the partition assignment.
//!
//! Owns: the residual graph representation and the solver. It knows nothing about partitions or
//! zones. Invariants: every edge is stored next to its reverse edge (`e` and `e ^ 1`); initial
//! costs must be non-negative (the assignment only uses costs ≥ 0), which lets the first
//! Dijkstra run without a Bellman-Ford pass. The solver is deterministic: vertices are scanned in
//! index order and heap ties are broken by vertex index, so the same graph built in the same order
//! always yields the same flow.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Index of an edge returned by [`FlowGraph::add_edge`].
pub(crate) type EdgeId = usize;

/// Cost type: wide enough for the lexicographic weights of the assignment (see `problem.rs`).
pub(crate) type Cost = i128;

const INF: Cost = Cost::MAX / 4;

/// Outcome of a min-cost max-flow run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlowOutcome {
    /// Total flow pushed from the source to the sink.
    pub flow: i64,
    /// Total cost of that flow.
    pub cost: Cost,
}

/// A directed graph with capacities and costs, and its residual state.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowGraph {
    adj: Vec<Vec<EdgeId>>,
    to: Vec<usize>,
    cap: Vec<i64>,
    cost: Vec<Cost>,
}

impl FlowGraph {
    /// A graph with `n` vertices numbered `0..n` and no edges.
    pub fn new(n: usize) -> Self {
        Self {
            adj: vec![Vec::new(); n],
            ..Self::default()
        }
    }

    /// Adds a vertex and returns its index.
    pub fn add_vertex(&mut self) -> usize {
        self.adj.push(Vec::new());
        self.adj.len() - 1
    }

    /// Number of vertices.
    pub fn vertex_count(&self) -> usize {
        self.adj.len()
    }

    /// Adds an edge `from → to` with capacity `cap ≥ 0` and cost `cost ≥ 0`.
    pub fn add_edge(&mut self, from: usize, to: usize, cap: i64, cost: Cost) -> EdgeId {
        debug_assert!(cap >= 0 && cost >= 0, "capacities and costs must be >= 0");
        let id = self.to.len();
        self.to.push(to);
        self.cap.push(cap);
        self.cost.push(cost);
        self.adj[from].push(id);
        self.to.push(from);
        self.cap.push(0);
        self.cost.push(-cost);
        self.adj[to].push(id + 1);
        id
    }

    /// Flow currently carried by edge `e` (the residual capacity of its reverse edge).
    pub fn flow(&self, e: EdgeId) -> i64 {
        self.cap[e ^ 1]
    }

    /// Pushes as much flow as possible from `s` to `t`, at minimum total cost among all maximum
    /// flows. Can be called once per graph (later calls find nothing more to push).
    pub fn min_cost_max_flow(&mut self, s: usize, t: usize) -> FlowOutcome {
        let n = self.vertex_count();
        let mut potential = vec![0 as Cost; n];
        let mut dist = vec![INF; n];
        let mut via = vec![usize::MAX; n];
        let mut done = vec![false; n];
        let mut heap = BinaryHeap::new();
        let mut outcome = FlowOutcome { flow: 0, cost: 0 };
        loop {
            dist.fill(INF);
            via.fill(usize::MAX);
            done.fill(false);
            dist[s] = 0;
            heap.clear();
            heap.push(Reverse((0 as Cost, s)));
            while let Some(Reverse((d, u))) = heap.pop() {
                if done[u] {
                    continue;
                }
                done[u] = true;
                if u == t {
                    break;
                }
                for &e in &self.adj[u] {
                    if self.cap[e] <= 0 {
                        continue;
                    }
                    let v = self.to[e];
                    let nd = d + self.cost[e] + potential[u] - potential[v];
                    if nd < dist[v] {
                        dist[v] = nd;
                        via[v] = e;
                        heap.push(Reverse((nd, v)));
                    }
                }
            }
            if !done[t] {
                return outcome;
            }
            // Vertices not settled before `t` get `dist[t]`: this keeps every residual reduced cost
            // non-negative while letting Dijkstra stop as soon as the sink is reached.
            let dt = dist[t];
            for (p, &d) in potential.iter_mut().zip(dist.iter()) {
                *p += d.min(dt);
            }
            let mut push = i64::MAX;
            let mut v = t;
            while v != s {
                let e = via[v];
                push = push.min(self.cap[e]);
                v = self.to[e ^ 1];
            }
            let mut v = t;
            while v != s {
                let e = via[v];
                self.cap[e] -= push;
                self.cap[e ^ 1] += push;
                outcome.cost += Cost::from(push) * self.cost[e];
                v = self.to[e ^ 1];
            }
            outcome.flow += push;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_cheapest_paths() {
        // s=0, a=1, b=2, t=3: two units must go, the cheap path takes one.
        let mut g = FlowGraph::new(4);
        let sa = g.add_edge(0, 1, 1, 1);
        let sb = g.add_edge(0, 2, 5, 4);
        g.add_edge(1, 3, 5, 1);
        g.add_edge(2, 3, 5, 0);
        let out = g.min_cost_max_flow(0, 3);
        assert_eq!(
            out,
            FlowOutcome {
                flow: 6,
                cost: 2 + 5 * 4
            }
        );
        assert_eq!(g.flow(sa), 1);
        assert_eq!(g.flow(sb), 5);
    }

    #[test]
    fn reroutes_through_reverse_edges() {
        // Classic case where the first shortest path must be partly undone.
        //   s→a (1,0) s→b (1,0) a→t (1,0) a→b... built so that the optimum needs a reverse edge.
        let mut g = FlowGraph::new(4);
        g.add_edge(0, 1, 1, 0); // s→a
        g.add_edge(0, 2, 1, 2); // s→b
        g.add_edge(1, 2, 1, 0); // a→b
        g.add_edge(1, 3, 1, 3); // a→t
        g.add_edge(2, 3, 1, 0); // b→t
        let out = g.min_cost_max_flow(0, 3);
        assert_eq!(out.flow, 2);
        // Optimal: s→a→t (3) + s→b→t (2) = 5; the first path s→a→b→t (0) is rerouted.
        assert_eq!(out.cost, 5);
    }

    #[test]
    fn matches_brute_force_on_small_assignment() {
        // 3 workers, 3 jobs, each worker takes one job; brute force over permutations.
        let costs = [[4, 1, 3], [2, 0, 5], [3, 2, 2]];
        let mut g = FlowGraph::new(8);
        for (w, row) in costs.iter().enumerate() {
            g.add_edge(0, 1 + w, 1, 0);
            for (j, &c) in row.iter().enumerate() {
                g.add_edge(1 + w, 4 + j, 1, c);
            }
        }
        for j in 0..3 {
            g.add_edge(4 + j, 7, 1, 0);
        }
        let out = g.min_cost_max_flow(0, 7);
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        let best = perms
            .iter()
            .map(|p| (0..3).map(|w| costs[w][p[w]]).sum::<Cost>())
            .min()
            .unwrap();
        assert_eq!(
            out,
            FlowOutcome {
                flow: 3,
                cost: best
            }
        );
    }
}
